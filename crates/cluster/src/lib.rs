//! Conveyor's cluster: nodes that replicate the metadata catalog with
//! openraft (one Raft group) and each Kafka partition of a replicated
//! topic (one Raft group per partition over its replicas, appending
//! committed batches to the broker's partition log), talk to each other
//! over TCP on their cluster addresses (one pool of connections per peer
//! for every group), forward catalog changes to the leader, report the
//! groups' state (every partition's as its leader reports it), set the
//! cluster's one Kafka cluster id, keep consumer groups' committed
//! offsets in the metadata group (its leader coordinates groups), and add
//! and remove members (a removed node's partition replicas move to the
//! others). Knows the catalog's events and the broker's
//! partitions; nothing of the front doors' wire formats.

pub mod catalog_link;
pub mod cluster_identity;
pub mod config;
pub mod error;
pub mod group_coordination;
pub mod group_status;
pub mod log_state;
pub mod log_store;
pub mod machine;
pub mod membership;
pub mod network;
pub mod node;
pub mod partition_groups;
pub mod partition_link;
pub mod partition_machine;
pub mod partition_writes;
pub mod placement_reports;
pub mod reassignment;
pub mod server;
pub mod status;
pub mod type_config;
pub mod wire;

pub use config::{ClusterConfig, Doors};
pub use error::ClusterError;
pub use group_status::PartitionGroupStatus;
pub use membership::{MembershipChange, MembershipError};
pub use node::ClusterNode;
pub use status::{ClusterStatus, MemberStatus};
pub use type_config::{Command, NodeId, Outcome, TypeConfig};
