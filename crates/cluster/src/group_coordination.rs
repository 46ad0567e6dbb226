//! Group and transaction coordination on a cluster: the metadata group's
//! leader coordinates every consumer group and transactional id, and
//! committed offsets and the transactions' state are entries of the
//! metadata group (`Command::Offsets`, `Command::Transaction`), so every
//! node holds them and the next leader serves the same ones (Kafka keeps
//! them in `__consumer_offsets` and `__transaction_state`, whose partition
//! leaders coordinate). Knows the metadata group's leadership; no group or
//! transaction rules.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use conveyor_core::group::{CommittedOffsets, Coordination, Coordinator, OffsetChange};
use conveyor_core::transaction::{TransactionChange, Transactions};

use crate::node::ClusterNode;
use crate::type_config::{Command, ELECTION_TIMEOUT_MIN_MS};

impl Coordination for ClusterNode {
    fn coordinator(&self) -> Pin<Box<dyn Future<Output = Coordinator> + Send + '_>> {
        Box::pin(async move {
            let (leader, term) = {
                let metrics = self.metrics();
                let metrics = metrics.borrow();
                (metrics.current_leader, metrics.current_term)
            };
            match leader {
                Some(leader) if leader == self.node_id() && self.leadership_confirmed_lately(term) => Coordinator::Here,
                // A new leader first applies what earlier leaders committed
                // (its term's first entry, and every one before it).
                Some(leader) if leader == self.node_id() => {
                    let confirming = Instant::now();
                    match self.raft().ensure_linearizable().await {
                        Ok(_) => {
                            *self.confirmed_leadership.lock() = Some((term, confirming));
                            Coordinator::Here
                        }
                        Err(error) => match error
                            .forward_to_leader::<openraft::BasicNode>()
                            .and_then(|forward| forward.leader_id)
                        {
                            Some(other) => Coordinator::Elsewhere(other as i32),
                            None => Coordinator::Unknown,
                        },
                    }
                }
                Some(other) => Coordinator::Elsewhere(other as i32),
                None => Coordinator::Unknown,
            }
        })
    }

    fn propose_offsets(&self, changes: Vec<OffsetChange>) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(self.propose_coordinated(Command::Offsets { changes }))
    }

    fn read_offsets(&self, read: &mut dyn FnMut(&CommittedOffsets)) {
        self.machine().with_data(|data| read(&data.offsets));
    }

    fn propose_transaction(&self, change: TransactionChange) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(self.propose_coordinated(Command::Transaction { change }))
    }

    fn read_transactions(&self, read: &mut dyn FnMut(&Transactions)) {
        self.machine().with_data(|data| read(&data.transactions));
    }
}

impl ClusterNode {
    /// True when a quorum confirmed this node's leadership in `term`, with
    /// earlier leaders' entries applied, less than half an election timeout
    /// ago (counted from before the confirmation was asked): the followers
    /// that confirmed it vote for no one else before their election timeout,
    /// so no other leader can have committed anything since. Spares the
    /// quorum round of `ensure_linearizable` on every heartbeat, commit and
    /// offset fetch of every group.
    fn leadership_confirmed_lately(&self, term: u64) -> bool {
        let lease = Duration::from_millis(ELECTION_TIMEOUT_MIN_MS / 2);
        matches!(*self.confirmed_leadership.lock(), Some((confirmed, at)) if confirmed == term && at.elapsed() < lease)
    }

    /// Writes a coordinator's `command` through the metadata group.
    async fn propose_coordinated(&self, command: Command) -> Result<(), String> {
        self.propose_command(command).await.map(|_| ()).map_err(|error| error.to_string())
    }
}
