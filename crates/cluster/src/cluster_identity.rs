//! The cluster's one Kafka cluster id: while the cluster has none, the
//! node that leads the metadata group proposes its data directory's id
//! (`Broker::propose_cluster_id`, a `ClusterIdSet` catalog event); every
//! node then answers the same id in Metadata and DescribeCluster. Knows
//! the metadata group's leadership and the broker's entry point; no rules.

use std::sync::Arc;
use std::time::Duration;

use conveyor_core::Broker;
use openraft::ServerState;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::node::ClusterNode;

/// How often a leader whose proposal failed tries again.
const RETRY: Duration = Duration::from_secs(1);

/// Proposes the cluster id whenever this node leads and the cluster has
/// none; returns once the broker has one, or at `shutdown`.
pub async fn settle_cluster_id(node: Arc<ClusterNode>, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut metrics = node.metrics();
    while !broker.has_cluster_wide_id() {
        let leads = metrics.borrow_and_update().state == ServerState::Leader;
        if leads {
            match broker.propose_cluster_id().await {
                Ok(()) => info!(cluster_id = %broker.cluster_id(), "the cluster's id is set"),
                Err(error) => warn!(%error, "setting the cluster's id; trying again"),
            }
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RETRY) => {}
            _ = shutdown.changed() => return,
        }
    }
}
