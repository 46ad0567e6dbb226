//! openraft's network over [`wire`](crate::wire): every group of a node
//! (the metadata group and each partition's) sends through one
//! [`PeerPool`]: idle connections per peer, taken for one call and given
//! back, so many groups' heartbeats share a few sockets rather than one
//! each. Every call bounded by openraft's deadline. Knows sockets and
//! frames; the peer's answer is openraft's to judge.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use tokio::net::{TcpSocket, TcpStream};

use crate::type_config::{GroupId, NodeId, TypeConfig};
use crate::wire::{Request, Response, read_frame, write_frame};

/// How long connecting to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Idle connections kept per peer; more are closed when given back.
const IDLE_CONNECTIONS_MAX: usize = 8;

/// The connections of one node to its peers, shared by all its groups.
#[derive(Debug, Default)]
pub struct PeerPool {
    /// The address every connection leaves from: `--cluster-addr`'s, so a
    /// peer (or a firewall between nodes) sees which node calls; `None`
    /// when that is the unspecified address (the system picks).
    source: Option<IpAddr>,
    idle: parking_lot::Mutex<HashMap<String, Vec<TcpStream>>>,
    /// When each peer last answered an AppendEntries (a heartbeat or
    /// entries) of each group: a replica silent for long is out of sync.
    answered: parking_lot::Mutex<HashMap<(Option<GroupId>, NodeId), Instant>>,
}

impl PeerPool {
    /// A pool whose connections leave from `cluster_addr`'s address.
    pub fn from(cluster_addr: SocketAddr) -> PeerPool {
        let source = cluster_addr.ip();
        PeerPool {
            source: (!source.is_unspecified()).then_some(source),
            ..PeerPool::default()
        }
    }

    /// A connection of its own to the peer at `addr`, within [`CONNECT_TIMEOUT`].
    pub async fn connect(&self, addr: &str) -> std::io::Result<TcpStream> {
        let connecting = async {
            let Some(source) = self.source else {
                return TcpStream::connect(addr).await;
            };
            let mut last_error = None;
            for target in tokio::net::lookup_host(addr).await? {
                let socket = if target.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                if target.is_ipv4() == source.is_ipv4() {
                    socket.bind(SocketAddr::new(source, 0))?;
                }
                match socket.connect(target).await {
                    Ok(stream) => return Ok(stream),
                    Err(error) => last_error = Some(error),
                }
            }
            Err(last_error.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr} resolves to no address"))))
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connecting to {addr}")))??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn take(&self, addr: &str) -> Option<TcpStream> {
        self.idle.lock().get_mut(addr).and_then(Vec::pop)
    }

    fn give_back(&self, addr: &str, stream: TcpStream) {
        let mut idle = self.idle.lock();
        let streams = idle.entry(addr.to_owned()).or_default();
        if streams.len() < IDLE_CONNECTIONS_MAX {
            streams.push(stream);
        }
    }

    /// Sends `request` to the node at `addr` on one of its connections and
    /// reads the answer, within `deadline`. A connection broken or
    /// abandoned mid-call is dropped, never given back: its next frame
    /// could be the late answer.
    pub async fn call(&self, addr: &str, request: &Request, deadline: Duration) -> Result<Response, CallError> {
        let exchange = async {
            let mut stream = match self.take(addr) {
                Some(stream) => stream,
                None => self.connect(addr).await.map_err(CallError::Unreachable)?,
            };
            let answer = async {
                write_frame(&mut stream, request).await?;
                read_frame::<Response>(&mut stream)
                    .await?
                    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the peer closed the connection"))
            }
            .await;
            match answer {
                Ok(response) => {
                    self.give_back(addr, stream);
                    Ok(response)
                }
                Err(error) => Err(CallError::Network(error)),
            }
        };
        match tokio::time::timeout(deadline, exchange).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Network(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer in time",
            ))),
        }
    }

    /// Notes that `node` answered an AppendEntries of `group` now.
    fn note_answer(&self, group: Option<GroupId>, node: NodeId) {
        self.answered.lock().insert((group, node), Instant::now());
    }

    /// Whether `node` answered an AppendEntries of `group` within `within`.
    pub fn answered_within(&self, group: Option<GroupId>, node: NodeId, within: Duration) -> bool {
        self.answered
            .lock()
            .get(&(group, node))
            .is_some_and(|answered| answered.elapsed() <= within)
    }

    /// Forgets the answers of `group`'s replicas (its group stopped).
    pub fn forget_group(&self, group: GroupId) {
        self.answered.lock().retain(|(answered_group, _), _| *answered_group != Some(group));
    }

    /// Connections open and idle now, per peer address.
    pub fn idle_counts(&self) -> HashMap<String, usize> {
        self.idle
            .lock()
            .iter()
            .map(|(addr, streams)| (addr.clone(), streams.len()))
            .collect()
    }
}

/// Makes a [`PeerClient`] per target for one group.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pool: Arc<PeerPool>,
    /// `None`: the metadata group.
    group: Option<GroupId>,
}

impl Network {
    /// The network of `group` (`None`: the metadata group) over `pool`.
    pub fn new(pool: Arc<PeerPool>, group: Option<GroupId>) -> Network {
        Network { pool, group }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            pool: Arc::clone(&self.pool),
            group: self.group,
        }
    }
}

/// One peer, as one group's Raft sees it.
#[derive(Debug)]
pub struct PeerClient {
    target: NodeId,
    addr: String,
    pool: Arc<PeerPool>,
    group: Option<GroupId>,
}

/// Why a call reached no answer.
#[derive(Debug)]
pub enum CallError {
    /// Could not connect: back off.
    Unreachable(std::io::Error),
    /// The connection broke mid-call.
    Network(std::io::Error),
}

impl PeerClient {
    /// Sends `request` (for this client's group) and reads its answer,
    /// within `deadline`, on a connection of the pool.
    async fn call(&mut self, request: Request, deadline: Duration) -> Result<Response, CallError> {
        let request = match self.group {
            Some(group) => Request::Partition {
                group,
                request: Box::new(request),
            },
            None => request,
        };
        self.pool.call(&self.addr, &request, deadline).await
    }

    fn failed<E: std::error::Error>(&self, error: CallError) -> RPCError<NodeId, BasicNode, E> {
        match error {
            CallError::Unreachable(error) => RPCError::Unreachable(Unreachable::new(&error)),
            CallError::Network(error) => RPCError::Network(NetworkError::new(&error)),
        }
    }

    fn unexpected<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        let error = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("node {} answered another request", self.target),
        );
        RPCError::Network(NetworkError::new(&error))
    }

    fn remote<E: std::error::Error>(&self, error: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, error))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(Request::AppendEntries(rpc), option.hard_ttl()).await {
            Ok(Response::AppendEntries(Ok(response))) => {
                self.pool.note_answer(self.group, self.target);
                Ok(response)
            }
            Ok(Response::AppendEntries(Err(error))) => Err(self.remote(error)),
            Ok(_) => Err(self.unexpected()),
            Err(error) => Err(self.failed(error)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>> {
        match self.call(Request::InstallSnapshot(rpc), option.hard_ttl()).await {
            Ok(Response::InstallSnapshot(Ok(response))) => Ok(response),
            Ok(Response::InstallSnapshot(Err(error))) => Err(self.remote(error)),
            Ok(_) => Err(self.unexpected()),
            Err(error) => Err(self.failed(error)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(Request::Vote(rpc), option.hard_ttl()).await {
            Ok(Response::Vote(Ok(response))) => Ok(response),
            Ok(Response::Vote(Err(error))) => Err(self.remote(error)),
            Ok(_) => Err(self.unexpected()),
            Err(error) => Err(self.failed(error)),
        }
    }
}
