//! Who the broker is to Kafka clients: the cluster id they compare (this
//! data directory's own, or on a cluster node the cluster's, set once by a
//! catalog event) and the producer ids InitProducerId hands out, reserved
//! in blocks by catalog events so that none is given twice, across
//! restarts and, on a cluster, across nodes (Kafka's AllocateProducerIds:
//! each node's block is decided where the metadata group applies its
//! request). Knows the catalog's events; nothing of Raft.

use super::Broker;
use super::metadata::run_to_completion;
use super::views::Opened;
use crate::catalog::Event;
use crate::error::{CoreError, Result};

/// Producer ids are reserved in the catalog this many at a time.
const PRODUCER_ID_BLOCK: i64 = 1000;

impl Broker {
    /// The Kafka cluster id clients see: on a cluster node the cluster's
    /// once its metadata leader set it, else this data directory's.
    pub fn cluster_id(&self) -> String {
        match &self.meta.current().cluster_id {
            Some(cluster_id) => cluster_id.to_string(),
            None => self.local_cluster_id.clone(),
        }
    }

    /// Whether the cluster's id is set (always false on a single node).
    pub fn has_cluster_wide_id(&self) -> bool {
        self.meta.current().cluster_id.is_some()
    }

    /// Proposes this data directory's id as the cluster's, unless one is
    /// set: what the metadata leader does when the cluster has none. Two
    /// leaders proposing in turn leave the first committed one.
    pub async fn propose_cluster_id(&self) -> Result<()> {
        let change = self.meta.change().await;
        if change.views().cluster_id.is_some() {
            return Ok(());
        }
        let event = Event::ClusterIdSet {
            cluster_id: self.local_cluster_id.clone(),
        };
        change.commit_to_end(event, true).await
    }

    /// A producer id never handed out before (Kafka's InitProducerId).
    /// Reserves a block in the catalog when the current one is used up: on
    /// a single node the next [`PRODUCER_ID_BLOCK`] ids; on a cluster node
    /// a block of its own from the metadata group (after a restart a new
    /// one: the rest of the old block is never used).
    pub async fn allocate_producer_id(&self) -> Result<i64> {
        loop {
            {
                let mut ids = self.meta.producer_ids.lock();
                if ids.0 < ids.1 {
                    ids.0 += 1;
                    return Ok(ids.0 - 1);
                }
            }
            // Reserve the next block durably before handing any of it out.
            let mut change = self.meta.change().await;
            let exhausted = {
                let ids = self.meta.producer_ids.lock();
                (ids.0 >= ids.1).then_some(ids.1)
            };
            let Some(limit) = exhausted else {
                continue;
            };
            let node_id = self.meta.replicated.get().map(|replicated| replicated.node_id());
            run_to_completion(async move {
                let block = match node_id {
                    None => {
                        let up_to = limit + PRODUCER_ID_BLOCK;
                        change.commit(Event::ProducerIdsReserved { up_to }, true, Opened::Nothing).await?;
                        (limit, up_to)
                    }
                    Some(node_id) => {
                        let event = Event::ProducerIdsAllocated {
                            node_id,
                            size: PRODUCER_ID_BLOCK,
                        };
                        change.commit(event, true, Opened::Nothing).await?;
                        // Applied here before the commit returned, under
                        // this change's lock: no other block of this node's
                        // came after it.
                        let block = change.catalog().producer_id_blocks.get(&node_id).copied().ok_or_else(|| {
                            CoreError::Catalog(format!("node {node_id}'s producer id block is missing after its allocation"))
                        })?;
                        (block.first, block.end)
                    }
                };
                *change.meta().producer_ids.lock() = block;
                Ok(())
            })
            .await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BrokerConfig;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_single_node_keeps_its_data_directory_s_cluster_id_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("open");
        let cluster_id = broker.cluster_id();
        assert_eq!(cluster_id.len(), 22, "Kafka's form: {cluster_id}");
        assert!(!broker.has_cluster_wide_id());
        drop(broker);
        let broker = Broker::open(BrokerConfig::new(dir.path())).expect("reopen");
        assert_eq!(broker.cluster_id(), cluster_id);
    }
}
