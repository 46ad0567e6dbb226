//! Why a cluster operation failed: the one error type at this crate's
//! boundary. Knows no wire codes; the binary and the doors map it.

use std::path::PathBuf;

/// A cluster operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `--peers` or its companions do not describe a cluster this node is in.
    #[error("cluster configuration: {0}")]
    Config(String),
    #[error("cluster storage under {path}: {reason}")]
    Storage { path: PathBuf, reason: String },
    #[error("binding the cluster listener on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// No leader answered in time (an election without a majority, or a
    /// leader unreachable from here).
    #[error("no metadata leader accepted the change: {0}")]
    NoLeader(String),
    #[error("raft: {0}")]
    Raft(String),
}
