//! openraft's network over [`wire`](crate::wire): one TCP connection per
//! peer, opened on first use and again after a failure; every call bounded
//! by openraft's deadline. Knows sockets and frames; the peer's answer is
//! openraft's to judge.

use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use tokio::net::TcpStream;

use crate::type_config::{NodeId, TypeConfig};
use crate::wire::{Request, Response, read_frame, write_frame};

/// How long connecting to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Makes a [`PeerClient`] per target.
#[derive(Debug, Clone, Default)]
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            stream: None,
        }
    }
}

/// One peer, as one node's Raft sees it.
#[derive(Debug)]
pub struct PeerClient {
    target: NodeId,
    addr: String,
    stream: Option<TcpStream>,
}

/// Why a call reached no answer.
#[derive(Debug)]
enum CallError {
    /// Could not connect: back off.
    Unreachable(std::io::Error),
    /// The connection broke mid-call.
    Network(std::io::Error),
}

impl PeerClient {
    /// Sends `request` and reads its answer, within `deadline`.
    async fn call(&mut self, request: &Request, deadline: Duration) -> Result<Response, CallError> {
        match tokio::time::timeout(deadline, self.call_unbounded(request)).await {
            Ok(result) => result,
            Err(_) => {
                self.stream = None;
                Err(CallError::Network(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer in time",
                )))
            }
        }
    }

    async fn call_unbounded(&mut self, request: &Request) -> Result<Response, CallError> {
        if self.stream.is_none() {
            let stream = connect(&self.addr).await.map_err(CallError::Unreachable)?;
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(CallError::Unreachable(std::io::Error::other("not connected")));
        };
        let answer = async {
            write_frame(stream, request).await?;
            read_frame::<Response>(stream)
                .await?
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the peer closed the connection"))
        }
        .await;
        answer.map_err(|error| {
            self.stream = None;
            CallError::Network(error)
        })
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

/// Connects to a peer's cluster address, within [`CONNECT_TIMEOUT`].
pub async fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connecting to {addr}")))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(&Request::AppendEntries(rpc), option.hard_ttl()).await {
            Ok(Response::AppendEntries(Ok(response))) => Ok(response),
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
        match self.call(&Request::InstallSnapshot(rpc), option.hard_ttl()).await {
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
        match self.call(&Request::Vote(rpc), option.hard_ttl()).await {
            Ok(Response::Vote(Ok(response))) => Ok(response),
            Ok(Response::Vote(Err(error))) => Err(self.remote(error)),
            Ok(_) => Err(self.unexpected()),
            Err(error) => Err(self.failed(error)),
        }
    }
}
