//! A file open on the simulated disk: reads see what was written, writes and
//! syncs go through the disk's fault rules. Dead after a power loss.

use std::io::{self, IoSlice};
use std::sync::Arc;

use parking_lot::Mutex;

use super::faults::SimError;
use super::state::{DiskState, NodeId};
use crate::storage::StorageFile;

#[derive(Debug)]
pub(crate) struct SimFile {
    state: Arc<Mutex<DiskState>>,
    generation: u64,
    node: NodeId,
}

impl SimFile {
    pub fn new(state: Arc<Mutex<DiskState>>, generation: u64, node: NodeId) -> SimFile {
        SimFile { state, generation, node }
    }

    fn live(&self) -> io::Result<parking_lot::MutexGuard<'_, DiskState>> {
        let state = self.state.lock();
        if state.generation != self.generation {
            return Err(SimError::Io.to_io());
        }
        Ok(state)
    }
}

impl StorageFile for SimFile {
    /// Writes the slices' bytes as one write, as `pwritev` does.
    fn write_vectored_at(&self, slices: &[IoSlice<'_>], position: u64) -> io::Result<usize> {
        let bytes: Vec<u8> = slices.iter().flat_map(|slice| slice.iter().copied()).collect();
        self.live()?.write(self.node, &bytes, position)
    }

    fn read_at(&self, buffer: &mut [u8], position: u64) -> io::Result<usize> {
        let state = self.live()?;
        let data = state.file_data(self.node)?;
        let start = usize::try_from(position).unwrap_or(usize::MAX).min(data.len());
        let length = buffer.len().min(data.len() - start);
        buffer[..length].copy_from_slice(&data[start..start + length]);
        Ok(length)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.live()?.sync_file(self.node)
    }

    fn set_len(&self, length: u64) -> io::Result<()> {
        self.live()?.set_len_checked(self.node, length)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.live()?.file_data(self.node)?.len() as u64)
    }

    fn allocate(&self, position: u64, length: u64) -> io::Result<()> {
        self.live()?.allocate(self.node, position + length)
    }
}
