//! The open-file cache: every segment file is reached through a
//! [`FileSlot`] that holds it open only while the cache has room, so the
//! number of open segment files stays near a cap however many logs exist.
//! Eviction is CLOCK (a second-chance approximation of LRU): a hit only
//! sets a flag, so reads and writes take no lock; a miss opens the file
//! through the log's [`Storage`] (the simulated disk in tests) and may close
//! others. Knows files and paths; nothing of segments, batches or offsets.
//!
//! A slot can be pinned (its writer has written bytes not yet fsynced): a
//! pinned file is never closed, so an `fdatasync` always runs on the
//! descriptor the writes went through and sees their errors. Pinned files may
//! take the cache past its cap; the writer unpins as soon as its data is
//! synced.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;

use crate::storage::{Storage, StorageFile};

/// How many ring entries one insertion looks at to drop entries of closed
/// or dropped slots, so the ring does not grow with files that are gone.
const TIDY_STEPS: usize = 2;

/// A file the cache keeps open. Readers and the writer hold one for the
/// length of one operation; the descriptor closes once the cache has closed
/// it and no such holder is left.
#[derive(Clone)]
pub(crate) struct OpenFile(Arc<Box<dyn StorageFile>>);

impl Deref for OpenFile {
    type Target = dyn StorageFile;

    fn deref(&self) -> &(dyn StorageFile + 'static) {
        self.0.as_ref().as_ref()
    }
}

/// The cache every slot of one I/O pool registers with.
pub(crate) struct FileCache {
    /// Files the cache may hold open (pinned ones may take it past this).
    capacity: usize,
    /// Slots holding a file now.
    open: AtomicUsize,
    ring: Mutex<Ring>,
}

/// The clock's ring of slots that hold (or held) a file, and its hand.
#[derive(Default)]
struct Ring {
    entries: Vec<Weak<FileSlot>>,
    hand: usize,
}

impl fmt::Debug for FileCache {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FileCache")
            .field("capacity", &self.capacity)
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish()
    }
}

impl FileCache {
    pub fn new(capacity: usize) -> Arc<FileCache> {
        Arc::new(FileCache {
            capacity: capacity.max(1),
            open: AtomicUsize::new(0),
            ring: Mutex::new(Ring::default()),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Slots holding an open file now.
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Counts a newly opened file in and closes unreferenced, unpinned ones
    /// while the cache is over its cap. Called with the slot's file stored.
    fn admit(&self, slot: &Arc<FileSlot>) {
        let mut guard = self.ring.lock();
        let ring = &mut *guard;
        self.open.fetch_add(1, Ordering::Relaxed);
        ring.entries.push(Arc::downgrade(slot));
        ring.tidy(TIDY_STEPS);
        // Two turns of the hand give every referenced file its second chance.
        let steps_max = ring.entries.len() * 2 + 1;
        for _ in 0..steps_max {
            if self.open.load(Ordering::Relaxed) <= self.capacity || ring.entries.is_empty() {
                break;
            }
            if ring.hand >= ring.entries.len() {
                ring.hand = 0;
            }
            let Some(candidate) = ring.entries[ring.hand].upgrade() else {
                let hand = ring.hand;
                ring.entries.swap_remove(hand);
                continue;
            };
            let hand = ring.hand;
            if candidate.file.load().is_none() {
                ring.entries.swap_remove(hand);
                continue;
            }
            if Arc::ptr_eq(&candidate, slot)
                || candidate.pinned.load(Ordering::Acquire)
                || candidate.referenced.swap(false, Ordering::AcqRel)
            {
                ring.hand += 1;
                continue;
            }
            if candidate.file.swap(None).is_some() {
                self.open.fetch_sub(1, Ordering::Relaxed);
            }
            ring.entries.swap_remove(hand);
        }
    }
}

impl Ring {
    /// Drops up to `steps` entries at the hand whose slot is gone or closed.
    fn tidy(&mut self, steps: usize) {
        for _ in 0..steps {
            if self.entries.is_empty() {
                return;
            }
            if self.hand >= self.entries.len() {
                self.hand = 0;
            }
            let live = self.entries[self.hand].upgrade().is_some_and(|slot| slot.file.load().is_some());
            if live {
                self.hand += 1;
            } else {
                self.entries.swap_remove(self.hand);
            }
        }
    }
}

/// One file reached through the cache: open while the cache keeps it,
/// opened again through its storage on the next use after that.
pub(crate) struct FileSlot {
    storage: Arc<dyn Storage>,
    path: PathBuf,
    cache: Arc<FileCache>,
    file: ArcSwapOption<Box<dyn StorageFile>>,
    /// Used since the clock's hand last passed.
    referenced: AtomicBool,
    /// Holds data not yet fsynced: never closed by the cache.
    pinned: AtomicBool,
    /// Serializes opening, so a miss opens the file once.
    opening: Mutex<()>,
    /// Its path names another file now (a cleaned segment renamed over
    /// it): once closed, it is never opened again by that path.
    retired: AtomicBool,
}

impl fmt::Debug for FileSlot {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FileSlot")
            .field("path", &self.path)
            .field("open", &self.file.load().is_some())
            .field("pinned", &self.pinned.load(Ordering::Relaxed))
            .finish()
    }
}

impl FileSlot {
    /// A slot for `path`, holding `file` if it is already open (it is
    /// counted in at once).
    pub fn new(cache: &Arc<FileCache>, storage: Arc<dyn Storage>, path: PathBuf, file: Option<Box<dyn StorageFile>>) -> Arc<FileSlot> {
        let opened = file.is_some();
        let slot = Arc::new(FileSlot {
            storage,
            path,
            cache: Arc::clone(cache),
            file: ArcSwapOption::new(file.map(Arc::new)),
            referenced: AtomicBool::new(true),
            pinned: AtomicBool::new(false),
            opening: Mutex::new(()),
            retired: AtomicBool::new(false),
        });
        if opened {
            cache.admit(&slot);
        }
        slot
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, opened again through the storage if the cache closed it.
    pub fn get(self: &Arc<Self>) -> io::Result<OpenFile> {
        self.referenced.store(true, Ordering::Relaxed);
        if let Some(file) = self.file.load_full() {
            return Ok(OpenFile(file));
        }
        let _opening = self.opening.lock();
        if let Some(file) = self.file.load_full() {
            return Ok(OpenFile(file));
        }
        if self.retired.load(Ordering::Acquire) {
            // As for a removed segment: the reader takes the new view.
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the segment was replaced by its cleaned version",
            ));
        }
        let file = Arc::new(self.storage.open(&self.path)?);
        self.file.store(Some(Arc::clone(&file)));
        self.cache.admit(self);
        Ok(OpenFile(file))
    }

    /// Marks the path as no longer this file's (see `retired`).
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// Pins the file open (unsynced data) or lets the cache close it again.
    pub fn set_pinned(&self, pinned: bool) {
        self.pinned.store(pinned, Ordering::Release);
    }

    /// Whether the cache holds the file open now.
    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        self.file.load().is_some()
    }
}

impl Drop for FileSlot {
    fn drop(&mut self) {
        if self.file.swap(None).is_some() {
            self.cache.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileSystem;

    fn slot(cache: &Arc<FileCache>, dir: &Path, name: &str) -> Arc<FileSlot> {
        let path = dir.join(name);
        std::fs::write(&path, name).expect("write");
        FileSlot::new(cache, Arc::new(FileSystem), path, None)
    }

    fn read(slot: &Arc<FileSlot>) -> Vec<u8> {
        let file = slot.get().expect("open");
        let length = file.len().expect("len") as usize;
        file.read_exact_vec(0, length).expect("read")
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_and_reopens_closed_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FileCache::new(2);
        let slots: Vec<_> = ["a", "b", "c", "d"].iter().map(|name| slot(&cache, dir.path(), name)).collect();
        for round in 0..3 {
            for (slot, name) in slots.iter().zip(["a", "b", "c", "d"]) {
                assert_eq!(read(slot), name.as_bytes(), "round {round}");
                assert!(cache.open_count() <= 2, "{} files open", cache.open_count());
            }
        }
        assert_eq!(slots.iter().filter(|slot| slot.is_open()).count(), 2);
        drop(slots);
        assert_eq!(cache.open_count(), 0, "dropped slots are counted out");
    }

    #[test]
    fn a_pinned_file_is_never_closed_and_a_used_one_gets_a_second_chance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FileCache::new(1);
        let pinned = slot(&cache, dir.path(), "pinned");
        read(&pinned);
        pinned.set_pinned(true);
        let other = slot(&cache, dir.path(), "other");
        read(&other);
        let third = slot(&cache, dir.path(), "third");
        read(&third);
        assert!(pinned.is_open(), "pinned files stay open past the cap");
        assert!(!other.is_open(), "the unpinned one was closed");
        pinned.set_pinned(false);
        read(&other);
        assert!(cache.open_count() <= 1);
        assert!(!pinned.is_open(), "unpinned, it is closed like any other");
    }
}
