//! Swaps cleaned segments in for the ones they replace, crash-safely, on the
//! writer's turn (the cleaner prepared and synced them off it; see
//! `cleaner.rs`). For each segment, oldest first: its index files are
//! removed, then the synced `<base>.cleaned` is renamed over `<base>.log` in
//! one atomic step, then the directory is synced before the next. A crash before the rename leaves the old
//! segment (recovery rebuilds its index and deletes the `.cleaned` file); a
//! crash after it leaves the new one, whole; never both, never half of one.
//! Knows segment files; nothing of keys or of why records went.

use std::sync::Arc;

use tracing::warn;

use crate::cleaner::CleanedSegment;
use crate::error::{LogError, Result};
use crate::file_cache::FileSlot;
use crate::segment::Segment;
use crate::shared::Shared;
use crate::storage::Storage;

/// Replaces sealed segments of `segments` (whose last is the active one)
/// with their cleaned versions; returns how many were swapped. A cleaned
/// file whose segment went or changed meanwhile is removed instead. A
/// segment cleaned down to nothing is removed.
pub(crate) fn swap_in(shared: &Shared, segments: &mut Vec<Arc<Segment>>, cleaned: Vec<CleanedSegment>) -> Result<usize> {
    let storage = shared.storage.as_ref();
    let mut renamed = Vec::with_capacity(cleaned.len());
    // A failure stops the renames, but the ones done are still taken in:
    // their files now hold the cleaned bytes.
    let mut failure = None;
    for candidate in cleaned {
        let sealed = segments.len().saturating_sub(1);
        let found = segments[..sealed]
            .iter()
            .position(|segment| segment.base_offset == candidate.base_offset && segment.committed_bytes() == candidate.old_bytes);
        let (Some(index), None) = (found, &failure) else {
            let _ = storage.remove_file(&candidate.path);
            continue;
        };
        let old = Arc::clone(&segments[index]);
        match rename_over(storage, &candidate, &old) {
            Ok(()) => {
                renamed.push((index, old, candidate));
                // Each rename is made durable before the next: segments are
                // swapped oldest first, so after a crash a tombstone is never
                // gone while an older value of its key came back.
                if let Err(error) = storage.sync_dir(&shared.dir) {
                    failure = Some(LogError::io(&shared.dir, error));
                }
            }
            Err(error) => {
                let _ = storage.remove_file(&candidate.path);
                failure = Some(error);
            }
        }
    }
    if renamed.is_empty() {
        return failure.map_or(Ok(0), Err);
    }
    let swapped = renamed.len();
    let mut emptied = Vec::new();
    for (index, old, candidate) in renamed {
        let CleanedSegment { file, scan, .. } = candidate;
        let slot = FileSlot::new(&shared.files, Arc::clone(&shared.storage), old.path.clone(), Some(file));
        let replacement = Segment::from_parts(
            old.base_offset,
            slot,
            scan.valid_bytes,
            // Readers skip a segment only by its next offset: it stays what it was.
            old.next_offset(),
            old.max_timestamp_ms(),
            scan.index,
        );
        if let Err(error) = replacement.write_index_files(storage) {
            warn!(segment = %old.path.display(), %error, "could not write a cleaned segment's index; it will be rebuilt on open");
        }
        old.retire();
        if scan.valid_bytes == 0 {
            emptied.push(index);
        }
        segments[index] = Arc::new(replacement);
    }
    // Highest index first, so the others stay where they are.
    for index in emptied.into_iter().rev() {
        let segment = segments.remove(index);
        for path in std::iter::once(segment.path.clone()).chain(segment.index_paths()) {
            let _ = storage.remove_file(&path);
        }
        segment.retire();
    }
    if let Err(error) = storage.sync_dir(&shared.dir) {
        failure.get_or_insert(LogError::io(&shared.dir, error));
    }
    failure.map_or(Ok(swapped), Err)
}

/// Removes `old`'s index files (they would describe the wrong file; a
/// missing one is rebuilt), then renames the cleaned file over it.
fn rename_over(storage: &dyn Storage, candidate: &CleanedSegment, old: &Segment) -> Result<()> {
    for path in old.index_paths() {
        match storage.remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(LogError::io(&path, error)),
        }
    }
    storage
        .rename(&candidate.path, &old.path)
        .map_err(|error| LogError::io(&candidate.path, error))
}
