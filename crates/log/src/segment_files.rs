//! Segment files on a log's directory as the writer makes and removes
//! them: a new segment whose directory entry is synced, and a removal that
//! tolerates a file already gone. Knows files, not batches.

use std::path::Path;
use std::sync::Arc;

use crate::error::{LogError, Result};
use crate::file_cache::FileCache;
use crate::segment::Segment;
use crate::storage::Storage;

/// Creates the empty segment file at `base` and syncs its directory. When
/// that fails the file is removed again if it can be; recovery removes an
/// empty file left before the active segment's end. A file left by an
/// earlier failed attempt is empty and is replaced.
pub(crate) fn create_segment(storage: &Arc<dyn Storage>, files: &Arc<FileCache>, dir: &Path, base: u64) -> Result<Segment> {
    let path = Segment::log_path(dir, base);
    let segment = match Segment::create(storage, files, dir, base) {
        Err(LogError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
            let left = storage
                .open(&path)
                .and_then(|file| file.len())
                .map_err(|error| LogError::io(&path, error))?;
            if left != 0 {
                return Err(LogError::io(
                    &path,
                    std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a segment with data is in the way"),
                ));
            }
            storage.remove_file(&path).map_err(|error| LogError::io(&path, error))?;
            Segment::create(storage, files, dir, base)?
        }
        other => other?,
    };
    if let Err(error) = storage.sync_dir(dir) {
        let _ = storage.remove_file(&path);
        return Err(LogError::io(dir, error));
    }
    Ok(segment)
}

pub(crate) fn remove_if_present(storage: &dyn Storage, path: &Path) -> Result<()> {
    match storage.remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(LogError::io(path, error)),
    }
}
