//! The metadata Raft group's types for openraft: what an entry carries
//! (a [`Command`]), what applying it answers, node ids and nodes.

use std::io::Cursor;

use conveyor_core::catalog::Event;
use serde::{Deserialize, Serialize};

use crate::config::Doors;

/// A node's id, as in `--node-id` and `--peers`.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The metadata group: catalog commands, applied by every node.
    pub TypeConfig:
        D = Command,
        R = Outcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// What one normal entry of the metadata log asks every node to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Catalog events, applied in order with the catalog's own `apply`.
    Catalog { events: Vec<Event> },
    /// A node's door addresses, so every node can tell clients where the
    /// others are.
    Advertise { node_id: NodeId, doors: Doors },
}

/// What applying an entry answers its proposer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The entry's index in the metadata log.
    pub log_index: u64,
}
