//! Where groups are coordinated on a cluster node: one node (the metadata
//! group's leader) coordinates every group, and committed offsets are
//! entries of the metadata group, so every node holds them and a new
//! leader serves the same offsets. The binary installs an implementation
//! (`crates/cluster`); without one the broker coordinates every group
//! itself and keeps offsets in its own journal (`offsets.rs`). Knows no
//! consensus and no sockets.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::offsets::{CommittedOffsets, OffsetChange};

/// Which node coordinates groups now, as this node knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coordinator {
    /// This node, having applied every offset committed before it led.
    Here,
    /// Another node, by its id.
    Elsewhere(i32),
    /// None known (an election is under way).
    Unknown,
}

/// What a cluster node offers the group coordinator.
pub trait Coordination: Send + Sync + std::fmt::Debug {
    /// Which node coordinates. Answers [`Coordinator::Here`] only once this
    /// node has applied everything the metadata group committed before
    /// (a new leader catches up first).
    fn coordinator(&self) -> Pin<Box<dyn Future<Output = Coordinator> + Send + '_>>;
    /// Sets (`Some`) or deletes (`None`) offsets as one entry of the
    /// metadata group; resolves once it is committed and applied here.
    fn propose_offsets(&self, changes: Vec<OffsetChange>) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
    /// Reads the offsets this node has applied.
    fn read_offsets(&self, read: &mut dyn FnMut(&CommittedOffsets));
}

impl super::GroupCoordinator {
    /// Coordinates groups with `coordination` (a cluster node's) from now
    /// on. Call before the doors serve; a second call changes nothing.
    pub fn coordinate_through(&self, coordination: Arc<dyn Coordination>) {
        self.offsets().replicate_through(coordination);
    }

    /// Which node coordinates groups: this one on a single node.
    pub async fn coordinator(&self) -> Coordinator {
        match self.offsets().replication() {
            Some(coordination) => coordination.coordinator().await,
            None => Coordinator::Here,
        }
    }
}
