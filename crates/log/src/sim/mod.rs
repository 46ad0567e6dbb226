//! A simulated disk for tests (the `sim` feature): a [`Storage`] that keeps
//! what was written apart from what was made durable, loses the difference on
//! a power loss, fails writes, fsyncs and metadata operations with EIO or
//! ENOSPC, tears writes, and fills up — all decided by a seeded generator, so
//! a run is replayed exactly from its seed. Knows files and directories;
//! nothing about logs, segments or batches, so the core's journals can run on
//! it too.
//!
//! [`Storage`]: crate::storage::Storage

mod disk;
mod faults;
mod file;
mod rng;
mod state;

pub use disk::SimDisk;
pub use faults::{Faults, PowerLoss, SimError, SimOp};
pub use rng::SimRng;
