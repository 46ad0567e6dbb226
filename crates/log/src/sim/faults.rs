//! What the simulated disk does wrong and when: random fault rates per kind
//! of operation, faults scheduled for the next matching operation, and what
//! a power loss keeps of what was not synced.

use std::io;

/// The kinds of operation the simulated disk can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimOp {
    /// A positional write to a file.
    Write,
    /// `fdatasync` of a file.
    Sync,
    /// Truncating or extending a file.
    SetLen,
    /// Creating a file or a directory.
    Create,
    Rename,
    /// Removing a file or a directory tree.
    Remove,
    /// Syncing a directory's entries.
    SyncDir,
}

/// The errors the simulated disk returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimError {
    /// EIO: the device failed.
    Io,
    /// ENOSPC: the file system is full.
    NoSpace,
}

impl SimError {
    pub fn to_io(self) -> io::Error {
        match self {
            SimError::Io => rustix::io::Errno::IO.into(),
            SimError::NoSpace => rustix::io::Errno::NOSPC.into(),
        }
    }
}

/// Random fault rates, in failures per million operations of each kind.
/// Writes that fail land a random prefix of their bytes first (a torn write).
/// A failed fsync keeps its unsynced writes pending, or with
/// `forget_failed_syncs`, half the time, drops them from what a later sync
/// makes durable while reads still see them (as Linux marks pages clean after
/// a writeback error: a later fsync then succeeds without writing them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    pub write_per_million: u32,
    pub sync_per_million: u32,
    /// Set length, create, rename, remove, directory sync.
    pub metadata_per_million: u32,
    /// Of the random faults, the share (0 to 100) that is ENOSPC rather than EIO.
    pub no_space_percent: u32,
    pub forget_failed_syncs: bool,
}

impl Faults {
    /// No random faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    pub(crate) fn per_million(&self, op: SimOp) -> u32 {
        match op {
            SimOp::Write => self.write_per_million,
            SimOp::Sync => self.sync_per_million,
            SimOp::SetLen | SimOp::Create | SimOp::Rename | SimOp::Remove | SimOp::SyncDir => self.metadata_per_million,
        }
    }
}

/// What a power loss keeps of what was written but not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerLoss {
    /// Every file goes back to its last synced contents and length, and every
    /// directory to its last synced entries.
    LoseUnsynced,
    /// As if the device wrote back part of the cache before the lights went
    /// out: each unsynced write survives or not, some only in part (torn), and
    /// each directory keeps all or none of its unsynced entries — decided by
    /// the disk's generator.
    KeepSome,
}
