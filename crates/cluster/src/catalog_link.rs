//! Joins a broker to its node's metadata group: the broker proposes its
//! durable catalog changes through the node (`Replication`), and every
//! catalog entry the node applies is delivered to the broker in log order
//! (`Broker::deliver_replicated`), which applies it through its one path
//! of a metadata change. Knows both sides' entry points; no rules.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use conveyor_core::Broker;
use conveyor_core::broker::Replication;
use conveyor_core::catalog::Event;
use tokio::sync::watch;
use tracing::warn;

use crate::node::ClusterNode;
use crate::partition_link::ClusterReplication;

impl Replication for ClusterNode {
    fn node_id(&self) -> u64 {
        ClusterNode::node_id(self)
    }

    fn propose(&self, events: Vec<Event>) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + '_>> {
        Box::pin(async move {
            ClusterNode::propose(self, events)
                .await
                .map(|outcome| outcome.log_index)
                .map_err(|error| error.to_string())
        })
    }
}

/// Makes `broker` propose through `node` and apply what the group
/// commits, until `shutdown`, and coordinate groups and transactions with
/// it (offsets and the transactions' state in the metadata group). Call before the doors serve.
///
/// The broker's Kafka partitions are replicated through the node's
/// partition groups too: each group learns of its topic from the catalog
/// entry before the broker opens the topic, so no append to a replicated
/// partition is taken for a local one.
pub fn link(node: &Arc<ClusterNode>, broker: &Arc<Broker>, shutdown: watch::Receiver<bool>) {
    broker.replicate_through(Arc::clone(node) as Arc<dyn Replication>);
    let coordination = Arc::clone(node) as Arc<dyn conveyor_core::group::Coordination>;
    broker.groups().coordinate_through(Arc::clone(&coordination));
    broker.transactions().replicate_through(coordination);
    let groups = Arc::clone(node.partition_groups());
    let applied_now = node.applied();
    groups.note_catalog(&applied_now.catalog, &applied_now.topic_voters);
    broker.replicate_partitions_through(Arc::new(ClusterReplication::new(Arc::clone(node), Arc::clone(&groups))));
    tokio::spawn(Arc::clone(&groups).run(Arc::clone(broker), shutdown.clone()));
    tokio::spawn(crate::placement_reports::gather(Arc::clone(&groups), shutdown.clone()));
    tokio::spawn(crate::membership::follow_members(
        Arc::clone(node),
        Arc::clone(&groups),
        shutdown.clone(),
    ));
    tokio::spawn(crate::reassignment::propose_moves(
        Arc::clone(node),
        Arc::clone(&groups),
        shutdown.clone(),
    ));
    tokio::spawn(crate::reassignment::carry_out(Arc::clone(&groups), shutdown.clone()));
    tokio::spawn(crate::cluster_identity::settle_cluster_id(
        Arc::clone(node),
        Arc::clone(broker),
        shutdown.clone(),
    ));
    let Some(mut applied) = node.take_applied() else {
        warn!("the metadata group's applied entries are taken already; this broker will not apply them");
        return;
    };
    let feeder = Arc::clone(broker);
    tokio::spawn(async move {
        while let Some(entry) = applied.recv().await {
            groups.note(&entry.events, &entry.voters);
            feeder.deliver_replicated(entry.log_index, entry.events);
        }
    });
    tokio::spawn(Arc::clone(broker).run_replicated(shutdown));
}
