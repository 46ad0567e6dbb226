//! Opening a log directory after a clean close or a crash: which segments
//! exist, which index files can be trusted, where the active segment's sound
//! batches end, and what happens to the bytes after a bad batch (a torn tail
//! is cut; anything that a sound batch follows is moved aside to a quarantine
//! file, never deleted). Knows segment files and batches; nothing of the
//! writer, topics or consumers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{error, info, warn};

use crate::batch::{self, BatchHeader, HEADER_BYTES};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::file_cache::{FileCache, FileSlot};
use crate::index::SegmentIndex;
use crate::segment::{self, Gaps, Segment, Start};
use crate::shared::{CLEAN_SHUTDOWN_FILE, START_OFFSET_FILE};
use crate::storage::{Storage, StorageFile};
use crate::transaction_index::OpenTxn;

/// Suffix of a file holding bytes recovery moved out of a segment.
pub const QUARANTINE_SUFFIX: &str = "quarantine";

/// How many bytes the search for a sound batch after a bad one reads at a time.
const SEARCH_BLOCK_BYTES: usize = 64 * 1024;

/// The start offset `truncate_prefix` persisted, or 0.
pub(crate) fn read_start_floor(storage: &dyn Storage, dir: &Path) -> Result<u64> {
    let path = dir.join(START_OFFSET_FILE);
    match storage.read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            text.trim().parse().map_err(|_| {
                LogError::io(
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an offset: {:?}", text.trim())),
                )
            })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(LogError::io(&path, error)),
    }
}

/// Wraps a segment file recovery opened in a slot of the open-file cache.
type MakeSlot<'a> = dyn Fn(PathBuf, Box<dyn StorageFile>) -> Arc<FileSlot> + 'a;

/// Opens every segment in `dir`: sealed segments trust their index files if
/// they pass checks (else rebuild them by scanning); the last segment is
/// always scanned and truncated after its last sound batch.
pub(crate) fn recover(
    storage: &Arc<dyn Storage>,
    files: &Arc<FileCache>,
    dir: &Path,
    config: &LogConfig,
    start_floor: u64,
) -> Result<Vec<Arc<Segment>>> {
    let storages = storage;
    let slot = |path: PathBuf, file: Box<dyn StorageFile>| FileSlot::new(files, Arc::clone(storages), path, Some(file));
    let storage = storage.as_ref();
    let mut base_offsets = Vec::new();
    let names = storage.list_dir(dir).map_err(|error| LogError::io(dir, error))?;
    for name in names {
        let path = dir.join(&name);
        if name.ends_with(".cleaned") {
            // A cleaning that crashed before its swap: the segment it was
            // to replace is still whole under its own name.
            let _ = storage.remove_file(&path);
            continue;
        }
        if name.ends_with(".tmp") {
            // A crash in the middle of an atomic write; the index is rebuilt.
            let _ = storage.remove_file(&path);
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
    let clean = storage.exists(&marker).map_err(|error| LogError::io(&marker, error))?;
    // Each file is open only while it is looked at: a log may have more
    // segments than the open-file cache has room for.
    let mut found = Vec::with_capacity(base_offsets.len());
    for base_offset in base_offsets {
        let path = Segment::log_path(dir, base_offset);
        let bytes = Segment::open_file(storage, &path)?
            .len()
            .map_err(|error| LogError::io(&path, error))?;
        found.push((base_offset, path, bytes));
    }
    // A roll only ever seals a segment that holds something, so an empty
    // segment file before the last one is what a roll left when it failed
    // after creating its file: it holds nothing, and its name would cut the
    // segment before it short.
    let last = found.len().saturating_sub(1);
    let mut kept = Vec::with_capacity(found.len());
    for (position, entry) in found.into_iter().enumerate() {
        if position < last && entry.2 == 0 {
            remove_empty_segment(storage, &entry.1)?;
        } else {
            kept.push(entry);
        }
    }
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(kept.len().max(1));
    let mut entries = kept.into_iter().peekable();
    // The transactions open at the end of the segment before: where a
    // segment's index that is rebuilt takes them from.
    let mut open: Vec<OpenTxn> = Vec::new();
    // Bounded by the number of segment files.
    while let Some((base_offset, path, _)) = entries.next() {
        let next = entries.peek().map(|(next_base, _, next_bytes)| (*next_base, *next_bytes));
        let file = Segment::open_file(storage, &path)?;
        let open_at_start = &open;
        let active = |file, path, trust_index, sync, gaps| {
            open_active(
                storage,
                &slot,
                file,
                path,
                base_offset,
                config,
                open_at_start,
                trust_index,
                sync,
                gaps,
            )
        };
        let segment = match next {
            None => active(file, path, clean, !clean, Gaps::Refused)?,
            // An empty last segment: a roll's new active segment, or one a
            // failed roll left while appends went on before it. Which one,
            // the end of the segment before it says (a scan from its last
            // index entry).
            Some((next_base, 0)) => {
                // It may be a sealed segment the cleaner compacted: gaps are
                // allowed.
                let segment = active(file, path, true, !clean, Gaps::Allowed)?;
                if segment.next_offset() > next_base {
                    let (_, leftover, _) = entries.next().expect("peeked");
                    remove_empty_segment(storage, &leftover)?;
                }
                segment
            }
            Some((next_base, _)) => open_sealed(storage, &slot, file, path, base_offset, next_base, config, open_at_start)?,
        };
        open = segment.open_at_end();
        segments.push(Arc::new(segment));
    }
    if segments.is_empty() {
        segments.push(Arc::new(Segment::create(storages, files, dir, start_floor)?));
    }
    if clean {
        // From here on the active segment changes again; a crash must not find the marker.
        storage.remove_file(&marker).map_err(|error| LogError::io(&marker, error))?;
    }
    storage.sync_dir(dir).map_err(|error| LogError::io(dir, error))?;
    Ok(segments)
}

#[allow(clippy::too_many_arguments)]
fn open_sealed(
    storage: &dyn Storage,
    slot: &MakeSlot<'_>,
    file: Box<dyn StorageFile>,
    path: PathBuf,
    base_offset: u64,
    next_base: u64,
    config: &LogConfig,
    open_at_start: &[OpenTxn],
) -> Result<Segment> {
    let file_bytes = file.len().map_err(|error| LogError::io(&path, error))?;
    let span = next_base.saturating_sub(base_offset);
    if let Some(index) = SegmentIndex::read_files(storage, &path, file_bytes, base_offset, span) {
        let max_timestamp_ms = index.times.last().map(|entry| entry.timestamp_ms).unwrap_or(i64::MIN);
        return Ok(Segment::from_parts(
            base_offset,
            slot(path, file),
            file_bytes,
            next_base,
            max_timestamp_ms,
            index,
        ));
    }
    warn!(segment = %path.display(), "index missing or damaged; rebuilding it by scanning the segment");
    let scan = segment::scan_sealed(file.as_ref(), &path, base_offset, config.index_interval_bytes, open_at_start)?;
    if let Some((position, reason)) = &scan.stopped {
        // Sealed segments were fsynced before the next one was created, so this
        // is media damage, not a torn write: whatever follows is kept aside.
        // Readers skip to the next segment past the gap.
        warn!(segment = %path.display(), position, offset = scan.next_offset, %reason, "sealed segment is damaged; serving only its sound prefix");
        quarantine_rest(storage, file.as_ref(), &path, scan.valid_bytes, file_bytes)?;
        file.set_len(scan.valid_bytes).map_err(|error| LogError::io(&path, error))?;
        file.sync_data().map_err(|error| LogError::io(&path, error))?;
    }
    let segment = Segment::from_parts(
        base_offset,
        slot(path.clone(), file),
        scan.valid_bytes,
        scan.next_offset,
        scan.max_timestamp_ms,
        scan.index,
    );
    if let Err(error) = segment.write_index_files(storage) {
        warn!(segment = %path.display(), %error, "could not write the rebuilt index; it will be rebuilt again next time");
    }
    Ok(segment)
}

/// The active segment is scanned and its tail validated. After a clean
/// shutdown the scan starts at the last index entry; otherwise at the start,
/// since any part of an unsynced tail may be torn.
///
/// `trust_index`: the index files may be read (after a clean shutdown, or for
/// a segment that was sealed); `sync`: the sound bytes may be in the page
/// cache only (after a crash), so they are synced before anything builds on
/// them.
#[allow(clippy::too_many_arguments)]
fn open_active(
    storage: &dyn Storage,
    slot: &MakeSlot<'_>,
    file: Box<dyn StorageFile>,
    path: PathBuf,
    base_offset: u64,
    config: &LogConfig,
    open_at_start: &[OpenTxn],
    trust_index: bool,
    sync: bool,
    gaps: Gaps,
) -> Result<Segment> {
    let file_bytes = file.len().map_err(|error| LogError::io(&path, error))?;
    let trusted = trust_index
        .then(|| SegmentIndex::read_files(storage, &path, file_bytes, base_offset, u64::from(u32::MAX)))
        .flatten();
    let was_trusted = trusted.is_some();
    let start = trusted.map_or(Start::Scan(open_at_start), Start::Trusted);
    let mut scan = segment::scan_from(file.as_ref(), &path, base_offset, config.index_interval_bytes, start, gaps)?;
    if was_trusted && (scan.stopped.is_some() || index_reaches_past(&scan.index, scan.next_offset - base_offset)) {
        // The segment lost batches after the clean shutdown (media damage, or
        // a file cut by hand), so the trusted index still describes them: its
        // time entries and max timestamp would point time lookups past the
        // batches appended in their place. Rebuild it from the sound bytes.
        warn!(segment = %path.display(), "the active segment changed after its clean shutdown; rebuilding its index by a full scan");
        scan = segment::scan_from(
            file.as_ref(),
            &path,
            base_offset,
            config.index_interval_bytes,
            Start::Scan(open_at_start),
            gaps,
        )?;
    }
    if let Some((position, reason)) = &scan.stopped {
        let followed = sound_batch_after(file.as_ref(), &path, *position, file_bytes)?;
        if followed.is_some() {
            // Not a torn tail: a sound batch follows the bad one. Keep a copy
            // of everything from the bad batch on before cutting it off.
            warn!(segment = %path.display(), position, offset = scan.next_offset, %reason, "a corrupt batch in the middle of the active segment");
            quarantine_rest(storage, file.as_ref(), &path, scan.valid_bytes, file_bytes)?;
        } else {
            warn!(
                segment = %path.display(),
                position,
                offset = scan.next_offset,
                discarded_bytes = file_bytes - scan.valid_bytes,
                %reason,
                "truncating the active segment at its torn tail"
            );
        }
        file.set_len(scan.valid_bytes).map_err(|error| LogError::io(&path, error))?;
        file.sync_data().map_err(|error| LogError::io(&path, error))?;
    } else {
        if file_bytes > 0 {
            info!(segment = %path.display(), next_offset = scan.next_offset, "recovered the active segment");
        }
        if sync {
            // After a crash the sound batches may be in the page cache only
            // (appended under `interval` or `never`), and so may a cut of a
            // failed append whose fsync failed: from here on what is read is
            // served and built on, so it must be what is on disk. A clean
            // close synced it already.
            file.sync_data().map_err(|error| LogError::io(&path, error))?;
        }
    }
    Ok(Segment::from_parts(
        base_offset,
        slot(path, file),
        scan.valid_bytes,
        scan.next_offset,
        scan.max_timestamp_ms,
        scan.index,
    ))
}

/// Removes an empty segment file a failed roll left, and its index files.
fn remove_empty_segment(storage: &dyn Storage, path: &Path) -> Result<()> {
    warn!(segment = %path.display(), "removing an empty segment file a failed roll left behind");
    for file in std::iter::once(path.to_path_buf()).chain(crate::index::index_paths(path)) {
        match storage.remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(LogError::io(&file, error)),
        }
    }
    Ok(())
}

/// The name of the file that keeps the bytes of `segment` from `position` on.
pub fn quarantine_path(segment: &Path, position: u64) -> PathBuf {
    let stem = segment
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    segment.with_file_name(format!("{stem}.{position}.{QUARANTINE_SUFFIX}"))
}

/// Copies the bytes of a segment from `from` to `end` into a quarantine file
/// next to it, durably (written, synced, renamed, directory synced), so the
/// caller may then cut them from the segment. Fails rather than lose them:
/// a log whose bad bytes cannot be saved does not open.
fn quarantine_rest(storage: &dyn Storage, file: &dyn StorageFile, path: &Path, from: u64, end: u64) -> Result<()> {
    if from >= end {
        return Ok(());
    }
    let quarantine = quarantine_path(path, from);
    let length = usize::try_from(end - from)
        .map_err(|_| LogError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, "segment rest too large")))?;
    let bytes = file.read_exact_vec(from, length).map_err(|error| LogError::io(path, error))?;
    if let Err(cause) = storage.write_atomically(&quarantine, &bytes) {
        error!(segment = %path.display(), quarantine = %quarantine.display(), %cause, "could not move damaged bytes aside; the log stays closed");
        return Err(LogError::io(&quarantine, cause));
    }
    error!(
        segment = %path.display(),
        bytes = %format!("{from}..{end}"),
        quarantine = %quarantine.display(),
        "moved the bytes after a corrupt batch aside to a quarantine file; they are no longer served"
    );
    Ok(())
}

/// The position of the first sound batch (framing and CRC-32C check out)
/// starting after `from` and ending by `end`, if there is one. Tries the
/// position the bad batch's own length gives first (only its payload may be
/// damaged), then every byte; reads `SEARCH_BLOCK_BYTES` at a time.
fn sound_batch_after(file: &dyn StorageFile, path: &Path, from: u64, end: u64) -> Result<Option<u64>> {
    let io = |error| LogError::io(path, error);
    if end.saturating_sub(from) < HEADER_BYTES as u64 {
        return Ok(None);
    }
    let head = file.read_exact_vec(from, HEADER_BYTES).map_err(io)?;
    if let Some(header) = BatchHeader::parse(&head)
        && batch::plausible_header(&head)
    {
        let next = from + header.total_bytes() as u64;
        if is_sound_batch_at(file, next, end).map_err(io)? {
            return Ok(Some(next));
        }
    }
    let mut block_start = from + 1;
    // Each pass moves `block_start` forward by at least one byte.
    while block_start + HEADER_BYTES as u64 <= end {
        let length = (end - block_start).min(SEARCH_BLOCK_BYTES as u64) as usize;
        let block = file.read_exact_vec(block_start, length).map_err(io)?;
        let last = length.saturating_sub(HEADER_BYTES);
        for at in 0..=last {
            if batch::plausible_header(&block[at..at + HEADER_BYTES])
                && is_sound_batch_at(file, block_start + at as u64, end).map_err(io)?
            {
                return Ok(Some(block_start + at as u64));
            }
        }
        block_start += last as u64 + 1;
    }
    Ok(None)
}

/// Whether a whole batch with a valid CRC-32C starts at `position` and ends by `end`.
fn is_sound_batch_at(file: &dyn StorageFile, position: u64, end: u64) -> std::io::Result<bool> {
    if position + HEADER_BYTES as u64 > end {
        return Ok(false);
    }
    let head = file.read_exact_vec(position, HEADER_BYTES)?;
    let Some(header) = BatchHeader::parse(&head) else {
        return Ok(false);
    };
    if header.check_framing((end - position) as usize).is_err() {
        return Ok(false);
    }
    let bytes = file.read_exact_vec(position, header.total_bytes())?;
    Ok(batch::verify_crc(&bytes, &header).is_ok())
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
