//! Where groups and transactions are coordinated on a cluster node: one
//! node (the metadata group's leader) coordinates every group and every
//! transactional id, and committed offsets and the transactions' state are
//! entries of the metadata group, so every node holds them and a new
//! leader serves the same offsets and finishes the same transactions. The
//! binary installs an implementation (`crates/cluster`); without one the
//! broker coordinates everything itself and keeps offsets and transactions
//! in its own journals (`offsets.rs`, `transaction/coordinator.rs`). Knows
//! no consensus and no sockets.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::offsets::{CommittedOffsets, OffsetChange};
use crate::transaction::{TransactionChange, Transactions};

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
    /// Sets one transactional id's metadata as one entry of the metadata
    /// group; resolves once it is committed and applied here.
    fn propose_transaction(&self, change: TransactionChange) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
    /// Reads the transactions' state this node has applied.
    fn read_transactions(&self, read: &mut dyn FnMut(&Transactions));
}

/// Answers `read` of the state a `reader` (one of [`Coordination`]'s
/// `read_*`) lends, or the default if it lends none.
pub(crate) fn read_through<S, T: Default>(reader: impl FnOnce(&mut dyn FnMut(&S)), read: impl FnOnce(&S) -> T) -> T {
    let mut read = Some(read);
    let mut answer = T::default();
    reader(&mut |state| {
        if let Some(read) = read.take() {
            answer = read(state);
        }
    });
    answer
}

impl super::GroupCoordinator {
    /// Coordinates groups with `coordination` (a cluster node's) from now
    /// on. Call before the doors serve; a second call changes nothing.
    pub fn coordinate_through(&self, coordination: Arc<dyn Coordination>) {
        self.offsets().replicate_through(coordination);
    }

    /// Which node coordinates groups and transactions: this one on a
    /// single node.
    pub async fn coordinator(&self) -> Coordinator {
        match self.offsets().replication() {
            Some(coordination) => coordination.coordinator().await,
            None => Coordinator::Here,
        }
    }
}
