//! One cluster node: opens the metadata group's storage under
//! `<data>/cluster/`, runs its openraft `Raft`, serves the other nodes on
//! `--cluster-addr`, bootstraps the membership from `--peers` (the lowest
//! id, when its log is empty), advertises its door addresses, and
//! proposes catalog events (forwarded to the leader when it is not one).
//! Holds the node's partition groups (`partition_groups.rs`), which share
//! its connections. Knows Raft and the catalog's events; nothing of the
//! broker.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use conveyor_core::catalog::Event;
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Raft};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{ClusterConfig, Doors};
use crate::error::ClusterError;
use crate::log_store::LogStore;
use crate::machine::{AppliedEvents, CatalogMachine, MachineData};
use crate::network::{Network, PeerPool};
use crate::partition_groups::PartitionGroups;
use crate::server::{propose_here, serve};
use crate::status::ClusterStatus;
use crate::type_config::{Command, NodeId, Outcome, TypeConfig, raft_config};
use crate::wire::{Request, Response, read_frame, write_frame};

/// How long a proposal may wait for a leader to take it.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between tries while no leader takes a proposal.
const PROPOSE_RETRY: Duration = Duration::from_millis(100);
/// Snapshot the catalog after this many entries since the last one.
const ENTRIES_PER_SNAPSHOT: u64 = 1000;

/// A running cluster node.
pub struct ClusterNode {
    config: ClusterConfig,
    raft: Raft<TypeConfig>,
    machine: CatalogMachine,
    log_store: LogStore,
    /// The partition groups this node is a replica of; they share the
    /// metadata group's connections to the peers.
    groups: Arc<PartitionGroups>,
    shutdown: watch::Sender<bool>,
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    /// The term and time at which this node, as the metadata leader, last
    /// had a quorum confirm its leadership, with every earlier leader's
    /// entries applied (`ensure_linearizable`).
    pub(crate) confirmed_leadership: parking_lot::Mutex<Option<(u64, std::time::Instant)>>,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClusterNode")
            .field("config", &self.config)
            .field("machine", &self.machine)
            .finish_non_exhaustive()
    }
}

impl ClusterNode {
    /// Binds `--cluster-addr`, opens the group's storage under `dir`,
    /// starts Raft, bootstraps when this node is the lowest id and has
    /// never held a log, and starts advertising `doors`.
    pub async fn start(config: ClusterConfig, dir: &Path, doors: Doors) -> Result<Arc<ClusterNode>, ClusterError> {
        let listener = TcpListener::bind(config.cluster_addr).await.map_err(|source| ClusterError::Bind {
            addr: config.cluster_addr,
            source,
        })?;
        let log_dir = dir.join("raft-log");
        let machine_dir = dir.to_owned();
        let (log_store, machine) = tokio::task::spawn_blocking(move || -> Result<_, ClusterError> {
            conveyor_log::index::create_dir_all(&machine_dir).map_err(|error| ClusterError::Storage {
                path: machine_dir.clone(),
                reason: error.to_string(),
            })?;
            Ok((LogStore::open(&log_dir)?, CatalogMachine::open(&machine_dir)?))
        })
        .await
        .map_err(|error| ClusterError::Raft(error.to_string()))??;
        let pristine = log_store.is_pristine();
        let raft_config = raft_config("conveyor-metadata", openraft::SnapshotPolicy::LogsSinceLast(ENTRIES_PER_SNAPSHOT))?;
        let pool = Arc::new(PeerPool::from(config.cluster_addr));
        let groups = Arc::new(PartitionGroups::new(
            config.node_id,
            config.peers.clone(),
            dir.join("partitions"),
            Arc::clone(&pool),
        ));
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            Network::new(pool, None),
            log_store.clone(),
            machine.clone(),
        )
        .await
        .map_err(|error| ClusterError::Raft(error.to_string()))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, raft.clone(), Arc::clone(&groups), shutdown_rx.clone()));
        let node = Arc::new(ClusterNode {
            config,
            raft,
            machine,
            log_store,
            groups,
            shutdown,
            tasks: parking_lot::Mutex::new(vec![server]),
            confirmed_leadership: parking_lot::Mutex::new(None),
        });
        if pristine && node.config.node_id == node.config.bootstrapper() {
            node.bootstrap().await?;
        }
        let advertiser = tokio::spawn(Arc::clone(&node).advertise(doors, shutdown_rx));
        node.tasks.lock().push(advertiser);
        info!(node_id = node.config.node_id, cluster_addr = %node.config.cluster_addr, pristine, "cluster node started");
        Ok(node)
    }

    /// Initializes the membership from `--peers`. A node that was already
    /// initialized (a restart) keeps what it has.
    async fn bootstrap(&self) -> Result<(), ClusterError> {
        let members: BTreeMap<NodeId, BasicNode> = self
            .config
            .peers
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr.to_string())))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => {
                info!(peers = %crate::config::format_peers(&self.config.peers), "initialized the metadata group's membership");
                Ok(())
            }
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(error) => Err(ClusterError::Raft(error.to_string())),
        }
    }

    /// Proposes this node's door addresses until one is applied (a leader
    /// may take a while to be elected), or the node shuts down.
    async fn advertise(self: Arc<Self>, doors: Doors, mut shutdown: watch::Receiver<bool>) {
        let node_id = self.config.node_id;
        loop {
            if self.machine.with_data(|data| data.doors.get(&node_id) == Some(&doors)) {
                return;
            }
            let command = Command::Advertise {
                node_id,
                doors: doors.clone(),
            };
            tokio::select! {
                result = self.propose_command(command) => match result {
                    Ok(_) => return,
                    Err(error) => warn!(%error, "advertising this node's door addresses; trying again"),
                },
                _ = shutdown.changed() => return,
            }
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Proposes catalog `events` as one entry; answers once a majority
    /// holds it and this node has applied it.
    pub async fn propose(&self, events: Vec<Event>) -> Result<Outcome, ClusterError> {
        self.propose_command(Command::Catalog { events }).await
    }

    /// Writes `command` through the leader: this node's Raft if it leads,
    /// else the leader's over the cluster connection; tries again while no
    /// leader is known, up to [`PROPOSE_TIMEOUT`]. Answers once the entry
    /// is applied here too.
    pub(crate) async fn propose_command(&self, command: Command) -> Result<Outcome, ClusterError> {
        let deadline = tokio::time::Instant::now() + PROPOSE_TIMEOUT;
        let mut last_reason = String::from("no leader yet");
        while tokio::time::Instant::now() < deadline {
            let refusal = match propose_here(&self.raft, command.clone()).await {
                Ok(outcome) => return Ok(outcome),
                Err(refusal) => refusal,
            };
            last_reason = refusal.reason.clone();
            if let Some(leader_addr) = refusal.leader_addr {
                match forward(self.groups.pool(), &leader_addr, &command).await {
                    Ok(Ok(outcome)) => {
                        self.wait_applied(outcome.log_index, deadline).await?;
                        return Ok(outcome);
                    }
                    Ok(Err(refusal)) => last_reason = refusal.reason,
                    Err(error) => last_reason = format!("forwarding to the leader at {leader_addr}: {error}"),
                }
            }
            tokio::time::sleep(PROPOSE_RETRY).await;
        }
        Err(ClusterError::NoLeader(last_reason))
    }

    /// Waits until this node has applied the entry at `log_index`.
    async fn wait_applied(&self, log_index: u64, deadline: tokio::time::Instant) -> Result<(), ClusterError> {
        let mut metrics = self.raft.metrics();
        let applied = tokio::time::timeout_at(
            deadline,
            metrics.wait_for(|metrics| metrics.last_applied.is_some_and(|id| id.index >= log_index)),
        )
        .await;
        match applied {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ClusterError::Raft("the node shut down".to_owned())),
            Err(_) => Err(ClusterError::NoLeader(format!(
                "entry {log_index} is committed but not applied on node {} in time",
                self.config.node_id
            ))),
        }
    }

    /// The group as this node sees it now.
    pub fn status(&self) -> ClusterStatus {
        let metrics = self.raft.metrics().borrow().clone();
        self.machine.with_data(|data| ClusterStatus::of(&metrics, &data.doors))
    }

    /// The metadata group's state machine.
    pub(crate) fn machine(&self) -> &CatalogMachine {
        &self.machine
    }

    /// The metadata group's Raft.
    pub(crate) fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The metadata group's Raft metrics as they change.
    pub fn metrics(&self) -> watch::Receiver<openraft::RaftMetrics<NodeId, BasicNode>> {
        self.raft.metrics()
    }

    /// Whether this node has joined a group that has a leader.
    pub fn has_leader(&self) -> bool {
        self.status().has_leader()
    }

    /// What this node has applied: the replicated catalog, the members' doors.
    pub fn applied(&self) -> MachineData {
        self.machine.data()
    }

    /// Reads the members' advertised door addresses.
    pub fn applied_doors<T>(&self, read: impl FnOnce(&BTreeMap<NodeId, Doors>) -> T) -> T {
        self.machine.with_data(|data| read(&data.doors))
    }

    /// The partition groups of this node.
    pub fn partition_groups(&self) -> &Arc<PartitionGroups> {
        &self.groups
    }

    /// Catalog events as this node applies them, in log order (for the
    /// one consumer that takes them first).
    pub fn take_applied(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<AppliedEvents>> {
        self.machine.take_applied()
    }

    /// Stops Raft and the listener, and closes the log. A clean stop is
    /// not needed for safety: everything acknowledged is on disk.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        self.groups.shutdown().await;
        if let Err(error) = self.raft.shutdown().await {
            warn!(%error, "stopping raft");
        }
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            task.abort();
        }
        let log_store = self.log_store.clone();
        let _ = tokio::task::spawn_blocking(move || log_store.close()).await;
    }
}

/// Sends `command` to the node at `addr` on a connection of its own.
async fn forward(pool: &PeerPool, addr: &str, command: &Command) -> std::io::Result<Result<Outcome, crate::wire::ProposeRefusal>> {
    let mut stream = pool.connect(addr).await?;
    let exchange = async {
        write_frame(&mut stream, &Request::Propose(command.clone())).await?;
        read_frame::<Response>(&mut stream).await
    };
    match tokio::time::timeout(PROPOSE_TIMEOUT, exchange).await {
        Ok(Ok(Some(Response::Propose(answer)))) => Ok(answer),
        Ok(Ok(_)) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "no answer to the proposal")),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the leader did not answer in time",
        )),
    }
}
