//! The Raft groups' types for openraft (the metadata group and every
//! partition's group share them): what an entry carries (a [`Command`]),
//! what applying it answers, node ids and nodes, and a group's id.

use std::io::Cursor;

use conveyor_core::append_condition::AppendCondition;
use conveyor_core::catalog::Event;
use conveyor_core::group::OffsetChange;
use conveyor_core::partition_write::PartitionWrite;
use conveyor_core::transaction::{MarkerKind, TransactionChange};
use serde::{Deserialize, Serialize};

use crate::config::Doors;
use crate::error::ClusterError;

/// How often a leader heartbeats, and the range an election timeout is
/// drawn from: a machine busy with builds still keeps its leader. The
/// metadata group and every partition group use the same.
const HEARTBEAT_MS: u64 = 150;
pub(crate) const ELECTION_TIMEOUT_MIN_MS: u64 = 750;
const ELECTION_TIMEOUT_MAX_MS: u64 = 1500;

/// A group's openraft configuration: the shared timings, its own name and
/// snapshot policy.
pub(crate) fn raft_config(cluster_name: &str, snapshot_policy: openraft::SnapshotPolicy) -> Result<openraft::Config, ClusterError> {
    openraft::Config {
        cluster_name: cluster_name.to_owned(),
        heartbeat_interval: HEARTBEAT_MS,
        election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
        snapshot_policy,
        ..openraft::Config::default()
    }
    .validate()
    .map_err(|error| ClusterError::Config(error.to_string()))
}

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
    /// Consumer groups' committed offsets set or deleted (by the node that
    /// coordinates groups): every node holds them, so a new leader of the
    /// metadata group serves the same offsets.
    Offsets { changes: Vec<OffsetChange> },
    /// One transactional id's new coordinator state (by the node that
    /// coordinates transactions): a new leader finishes what it decided.
    Transaction { change: TransactionChange },
    /// A write to a partition's log (a partition group's entries): every
    /// replica applies it in log order, so each gets the offsets the
    /// leader's log gives it. Record `batches` with the `conditions` they
    /// carry, or (`marker`) the marker ending a transaction. `request`
    /// names the proposer's wait.
    Append {
        request: uuid::Uuid,
        #[serde(with = "base64_bytes")]
        batches: Vec<u8>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        conditions: Vec<AppendCondition>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        marker: Option<Marker>,
    },
}

/// The marker ending a transaction in a partition, as an entry carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub kind: MarkerKind,
    pub now_ms: i64,
}

impl Command {
    /// The entry of `write`, waited for as `request`.
    pub fn append(request: uuid::Uuid, write: PartitionWrite) -> Command {
        match write {
            PartitionWrite::Records { batches, conditions } => Command::Append {
                request,
                batches: batches.to_vec(),
                conditions,
                marker: None,
            },
            PartitionWrite::Marker {
                producer_id,
                producer_epoch,
                kind,
                now_ms,
            } => Command::Append {
                request,
                batches: Vec::new(),
                conditions: Vec::new(),
                marker: Some(Marker {
                    producer_id,
                    producer_epoch,
                    kind,
                    now_ms,
                }),
            },
        }
    }
}

/// The write an append entry carries.
pub fn partition_write(batches: Vec<u8>, conditions: Vec<AppendCondition>, marker: Option<Marker>) -> PartitionWrite {
    match marker {
        Some(marker) => PartitionWrite::Marker {
            producer_id: marker.producer_id,
            producer_epoch: marker.producer_epoch,
            kind: marker.kind,
            now_ms: marker.now_ms,
        },
        None => PartitionWrite::Records {
            batches: bytes::Bytes::from(batches),
            conditions,
        },
    }
}

/// Which Raft group a message between nodes is for: the metadata group,
/// or one partition's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId {
    pub topic: uuid::Uuid,
    pub partition: u32,
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/{}", self.topic, self.partition)
    }
}

/// Record batches as one base64 text in JSON (not an array of numbers).
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// What applying an entry answers its proposer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The entry's index in the metadata log.
    pub log_index: u64,
}
