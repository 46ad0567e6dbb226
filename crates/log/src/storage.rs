//! The storage backend under the log: the file and directory operations that
//! segments, indexes, recovery and `write_atomically` need, behind a trait so
//! that tests can run the log on a simulated disk (`sim`, with the `sim`
//! feature) that loses unsynced writes, fails and tears them. Knows files and
//! directories; nothing about batches, offsets or segments.
//!
//! The production backend is [`FileSystem`](crate::FileSystem). Every method
//! is a blocking call; the log calls them from its writer thread and from
//! readers' threads, never from an async reactor.

use std::fmt;
use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One open file of a [`Storage`]: positional reads and writes, data sync,
/// length. Shared by the writer and readers (`&self` everywhere), like a
/// `std::fs::File` used with `pread`/`pwrite`.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Writes some prefix of `slices` at `position` (one `pwritev`); returns
    /// how many bytes landed. A short count is not an error.
    fn write_vectored_at(&self, slices: &[IoSlice<'_>], position: u64) -> io::Result<usize>;

    /// Reads up to `buffer.len()` bytes at `position` (one `pread`); 0 at the end.
    fn read_at(&self, buffer: &mut [u8], position: u64) -> io::Result<usize>;

    /// Makes the file's data and length durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;

    /// Truncates or extends the file to `length` bytes.
    fn set_len(&self, length: u64) -> io::Result<()>;

    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;

    /// Reserves room for `length` bytes at `position` without changing the
    /// file's length (`fallocate` with `FALLOC_FL_KEEP_SIZE`), so that writes
    /// there later cannot fail for want of space. A backend that cannot
    /// reserve does nothing.
    fn allocate(&self, position: u64, length: u64) -> io::Result<()> {
        let _ = (position, length);
        Ok(())
    }

    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads exactly `length` bytes at `position` into a new buffer.
    fn read_exact_vec(&self, position: u64, length: usize) -> io::Result<Vec<u8>> {
        let mut buffer = vec![0; length];
        self.read_exact_at(&mut buffer, position)?;
        Ok(buffer)
    }

    /// Fills `buffer` from `position`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buffer: &mut [u8], mut position: u64) -> io::Result<()> {
        while !buffer.is_empty() {
            match self.read_at(buffer, position) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => {
                    buffer = &mut buffer[read..];
                    position += read as u64;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Writes every byte of `slices` at `position`, in as many calls as short
    /// writes require (a backend may take at most IOV_MAX slices per call).
    fn write_all_vectored_at(&self, mut slices: &mut [IoSlice<'_>], mut position: u64) -> io::Result<()> {
        IoSlice::advance_slices(&mut slices, 0);
        while !slices.is_empty() {
            match self.write_vectored_at(slices, position) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    position += written as u64;
                    IoSlice::advance_slices(&mut slices, written);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Writes all of `bytes` at `position`.
    fn write_all_at(&self, bytes: &[u8], position: u64) -> io::Result<()> {
        self.write_all_vectored_at(&mut [IoSlice::new(bytes)], position)
    }
}

/// A file system the log stores its files in.
///
/// Durability follows POSIX: data written to a file is durable once
/// [`StorageFile::sync_data`] returns; a directory entry (a created, renamed or
/// removed name) once its directory is synced with [`Storage::sync_dir`].
pub trait Storage: Send + Sync + fmt::Debug {
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;

    /// Creates a new, empty file for reading and writing; fails if `path` exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;

    /// Creates `path` or truncates it to nothing, for reading and writing.
    fn create_or_truncate(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;

    /// The whole contents of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;

    /// The names of the entries of a directory, in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;

    /// Whether `path` names a file or directory.
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// Creates one directory; its parent must exist. Fails if `path` exists.
    fn create_dir(&self, path: &Path) -> io::Result<()>;

    /// Makes a directory's entries (created, renamed and removed names) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Creates `path` and every missing parent, and makes each of them
    /// durably named: every directory created here is synced, and so is the
    /// parent of each (the nearest directory that already existed included).
    /// When every directory is created this way, a directory that exists
    /// after a power loss is exactly one that existed before it.
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut missing: Vec<PathBuf> = Vec::new();
        let mut at = Some(path);
        // Bounded by the number of components of `path`.
        while let Some(dir) = at {
            if dir.as_os_str().is_empty() || self.exists(dir)? {
                break;
            }
            missing.push(dir.to_path_buf());
            at = dir.parent();
        }
        for dir in missing.iter().rev() {
            match self.create_dir(dir) {
                Ok(()) => {}
                // Created meanwhile by someone else: its creator syncs it.
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(error),
            }
        }
        for dir in &missing {
            self.sync_dir(dir)?;
        }
        if let Some(top) = missing.last()
            && let Some(parent) = top.parent()
            && !parent.as_os_str().is_empty()
        {
            self.sync_dir(parent)?;
        }
        Ok(())
    }

    /// Replaces `path` with `bytes` so that a crash leaves either the old or
    /// the new contents, never a mix: a `.tmp` file is written and synced,
    /// renamed over `path`, and the directory synced.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let temp = path.with_extension("tmp");
        {
            let file = self.create_or_truncate(&temp)?;
            file.write_all_at(bytes, 0)?;
            file.sync_data()?;
        }
        self.rename(&temp, path)?;
        match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => self.sync_dir(dir),
            _ => Ok(()),
        }
    }
}

/// The storage every log uses unless told otherwise: the real file system.
pub fn file_system() -> Arc<dyn Storage> {
    Arc::new(crate::file_system::FileSystem)
}

/// Whether `error` says the file system is full (ENOSPC, or EDQUOT: a quota
/// is full) rather than that the disk failed: the write did not happen for
/// want of space, and may succeed once space is freed.
pub fn is_out_of_space(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}
