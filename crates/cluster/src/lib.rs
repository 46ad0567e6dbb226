//! Conveyor's cluster: nodes that replicate the metadata catalog with
//! openraft (one Raft group), talk to each other over TCP on their cluster
//! addresses, forward catalog changes to the leader, and report the
//! group's state. Knows the catalog's events and its pure `apply`; nothing
//! of the front doors, the broker's open objects or partitions' data (data
//! is not replicated yet).

pub mod catalog_link;
pub mod config;
pub mod error;
pub mod log_state;
pub mod log_store;
pub mod machine;
pub mod network;
pub mod node;
pub mod server;
pub mod status;
pub mod type_config;
pub mod wire;

pub use config::{ClusterConfig, Doors};
pub use error::ClusterError;
pub use node::ClusterNode;
pub use status::{ClusterStatus, MemberStatus};
pub use type_config::{Command, NodeId, Outcome, TypeConfig};
