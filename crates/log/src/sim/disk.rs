//! The simulated disk a test holds: it hands out [`Storage`] handles, sets
//! fault rates, schedules single faults, limits capacity and pulls the plug.
//! Every handle from before a power loss fails afterwards, as the process
//! that held it would be gone.

use std::io;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::faults::{Faults, PowerLoss, SimError, SimOp};
use super::file::SimFile;
use super::state::DiskState;
use crate::storage::{Storage, StorageFile};

/// A simulated disk, driven by a seed. Cheap to clone; clones are one disk.
#[derive(Debug, Clone)]
pub struct SimDisk {
    state: Arc<Mutex<DiskState>>,
}

impl SimDisk {
    /// An empty disk (just a root directory) whose every random decision
    /// comes from `seed`.
    pub fn new(seed: u64) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(DiskState::new(seed))),
        }
    }

    /// A storage handle for the current power cycle.
    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::new(SimStorage {
            state: Arc::clone(&self.state),
            generation: self.state.lock().generation,
        })
    }

    /// Random fault rates from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().set_faults(faults);
    }

    /// Fails the next operation of kind `op` with `error`, whatever the rates.
    pub fn fail_next(&self, op: SimOp, error: SimError) {
        self.state.lock().schedule(op, error);
    }

    /// Limits the bytes all files may hold together (`None`: unlimited).
    /// Writes past it land what fits and then fail with ENOSPC.
    pub fn set_capacity(&self, capacity_bytes: Option<u64>) {
        self.state.lock().set_capacity(capacity_bytes);
    }

    /// The bytes the files hold now.
    pub fn used_bytes(&self) -> u64 {
        self.state.lock().used_bytes()
    }

    /// Cuts the power: unsynced writes and directory entries are lost (or,
    /// under [`PowerLoss::KeepSome`], partly kept), and every handle taken
    /// before fails from now on. Take a new one with [`SimDisk::storage`].
    pub fn power_loss(&self, mode: PowerLoss) {
        self.state.lock().power_loss(mode);
    }

    /// How many failed syncs so far dropped writes that reads still see and
    /// no later sync makes durable (see [`Faults::forget_failed_syncs`]).
    pub fn forgotten_syncs(&self) -> u64 {
        self.state.lock().forgotten_syncs()
    }

    /// The contents of a file as readers see them now.
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.state.lock().read(path)
    }

    /// The names in a directory, sorted.
    pub fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        self.state.lock().list(path)
    }

    /// Overwrites bytes of a file durably, bypassing faults: media damage.
    pub fn corrupt(&self, path: &Path, position: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        let id = state.open(path)?;
        state.damage(id, position, bytes)
    }

    /// The most recent operations that failed or changed the namespace,
    /// oldest first: what to print when a seed fails.
    pub fn trace(&self) -> Vec<String> {
        self.state.lock().trace()
    }
}

/// A [`Storage`] on a [`SimDisk`] for one power cycle.
#[derive(Debug)]
struct SimStorage {
    state: Arc<Mutex<DiskState>>,
    generation: u64,
}

impl SimStorage {
    /// The disk's state, if the power has not been cut since this handle was made.
    fn live(&self) -> io::Result<parking_lot::MutexGuard<'_, DiskState>> {
        let state = self.state.lock();
        if state.generation != self.generation {
            return Err(SimError::Io.to_io());
        }
        Ok(state)
    }

    fn file(&self, id: u64) -> Box<dyn StorageFile> {
        Box::new(SimFile::new(Arc::clone(&self.state), self.generation, id))
    }
}

impl Storage for SimStorage {
    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let id = self.live()?.open(path)?;
        Ok(self.file(id))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let id = self.live()?.create_file(path, true)?;
        Ok(self.file(id))
    }

    fn create_or_truncate(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let id = self.live()?.create_file(path, false)?;
        Ok(self.file(id))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.live()?.read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.live()?.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.live()?.remove(path, false)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.live()?.remove(path, true)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.live()?.list(path)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.live()?.exists(path))
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.live()?.create_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.live()?.sync_dir(path)
    }
}
