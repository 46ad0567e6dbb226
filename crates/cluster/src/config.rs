//! What makes a node a cluster member: its id, the address other nodes
//! reach it on, every member's id and cluster address (`--peers`), and the
//! door addresses it advertises. Parses and checks them; knows no sockets.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::error::ClusterError;
use crate::type_config::NodeId;

/// One node's place in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub node_id: NodeId,
    /// Where this node listens for the other nodes (`--cluster-addr`).
    pub cluster_addr: SocketAddr,
    /// Every member, this node included: id → cluster address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Replicas of each partition of a topic created without a
    /// replication factor (Kafka's `default.replication.factor`), at most
    /// the number of peers: [`DEFAULT_REPLICATION_FACTOR`] unless set.
    pub default_replication_factor: u16,
}

/// The replication factor of a topic created without one, when the
/// cluster has that many nodes (else its number of nodes).
pub const DEFAULT_REPLICATION_FACTOR: u16 = 3;

impl ClusterConfig {
    /// Checks that the node is one of the peers, under its own address.
    pub fn new(node_id: NodeId, cluster_addr: SocketAddr, peers: BTreeMap<NodeId, SocketAddr>) -> Result<ClusterConfig, ClusterError> {
        match peers.get(&node_id) {
            None => {
                return Err(ClusterError::Config(format!(
                    "--node-id {node_id} is not in --peers ({})",
                    format_peers(&peers)
                )));
            }
            Some(addr) if addr.port() != cluster_addr.port() => {
                return Err(ClusterError::Config(format!(
                    "--peers gives node {node_id} the address {addr}, but --cluster-addr is {cluster_addr}"
                )));
            }
            Some(_) => {}
        }
        let default_replication_factor = u16::try_from(peers.len()).unwrap_or(u16::MAX).min(DEFAULT_REPLICATION_FACTOR);
        Ok(ClusterConfig {
            node_id,
            cluster_addr,
            peers,
            default_replication_factor,
        })
    }

    /// The same node with `factor` as the default replication factor
    /// (`--default-replication-factor`): from 1 to the number of peers.
    pub fn with_default_replication_factor(mut self, factor: u16) -> Result<ClusterConfig, ClusterError> {
        if factor == 0 || usize::from(factor) > self.peers.len() {
            return Err(ClusterError::Config(format!(
                "the default replication factor {factor} must be between 1 and the {} nodes of --peers",
                self.peers.len()
            )));
        }
        self.default_replication_factor = factor;
        Ok(self)
    }

    /// The node that initializes the membership when no node has a log
    /// yet: the lowest id.
    pub fn bootstrapper(&self) -> NodeId {
        self.peers.keys().next().copied().unwrap_or(self.node_id)
    }
}

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002`: ids are positive and
/// distinct, every address a socket address.
pub fn parse_peers(text: &str) -> Result<BTreeMap<NodeId, SocketAddr>, ClusterError> {
    let mut peers = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| ClusterError::Config(format!("peer {item:?} is not ID=HOST:PORT")))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| ClusterError::Config(format!("peer {item:?}: the id is not a positive integer")))?;
        if id == 0 {
            return Err(ClusterError::Config(format!("peer {item:?}: node ids start at 1")));
        }
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| ClusterError::Config(format!("peer {item:?}: the address is not HOST:PORT")))?;
        if peers.insert(id, addr).is_some() {
            return Err(ClusterError::Config(format!("node id {id} appears twice in --peers")));
        }
    }
    if peers.is_empty() {
        return Err(ClusterError::Config("--peers names no node".to_owned()));
    }
    Ok(peers)
}

/// `--peers`' own syntax.
pub fn format_peers(peers: &BTreeMap<NodeId, SocketAddr>) -> String {
    peers.iter().map(|(id, addr)| format!("{id}={addr}")).collect::<Vec<_>>().join(",")
}

/// The addresses of a node's front doors, advertised to the other nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doors {
    pub kafka_addr: String,
    pub amqp_addr: String,
    pub http_addr: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_as_the_flag_documents() {
        let peers = parse_peers("1=127.0.0.1:7001,2=127.0.0.1:7002, 3=127.0.0.1:7003").expect("peers");
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[&2].to_string(), "127.0.0.1:7002");
        assert_eq!(format_peers(&peers), "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003");
        for bad in [
            "",
            "1",
            "x=127.0.0.1:1",
            "0=127.0.0.1:1",
            "1=nowhere",
            "1=127.0.0.1:1,1=127.0.0.1:2",
        ] {
            assert!(parse_peers(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_node_must_be_one_of_its_peers_under_its_own_address() {
        let peers = parse_peers("1=127.0.0.1:7001,2=127.0.0.1:7002").expect("peers");
        let addr = |text: &str| text.parse::<SocketAddr>().expect("addr");
        let config = ClusterConfig::new(2, addr("127.0.0.1:7002"), peers.clone()).expect("member");
        assert_eq!(config.bootstrapper(), 1, "the lowest id bootstraps");
        assert!(ClusterConfig::new(3, addr("127.0.0.1:7003"), peers.clone()).is_err());
        assert!(ClusterConfig::new(2, addr("127.0.0.1:7005"), peers).is_err());
    }
}
