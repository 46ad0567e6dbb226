//! The cluster listener: accepts other nodes' connections on
//! `--cluster-addr` and answers each request with the Raft of the group it
//! names (the metadata group's, or a partition's from the registry; a
//! forwarded proposal is written through the metadata group, a forwarded
//! partition write through its group, when this node leads). Knows frames and the Raft handles; nothing of the catalog's or
//! the partitions' meaning.

use std::sync::Arc;

use openraft::{BasicNode, Raft};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::membership::change_here;
use crate::partition_groups::PartitionGroups;
use crate::partition_writes::answer_write;
use crate::placement_reports::leader_reports;
use crate::type_config::{Command, NodeId, TypeConfig};
use crate::wire::{ProposeRefusal, Request, Response, read_frame, write_frame};

/// Serves `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, raft: Raft<TypeConfig>, groups: Arc<PartitionGroups>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let raft = raft.clone();
                    let shutdown = shutdown.clone();
                    let groups = Arc::clone(&groups);
                    tokio::spawn(async move {
                        if let Err(error) = connection(stream, raft, groups, shutdown).await {
                            debug!(%peer, %error, "cluster connection closed");
                        }
                    });
                }
                Err(error) => warn!(%error, "accepting a cluster connection"),
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    raft: Raft<TypeConfig>,
    groups: Arc<PartitionGroups>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    loop {
        let request = tokio::select! {
            request = read_frame::<Request>(&mut stream) => request?,
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(request) = request else {
            return Ok(());
        };
        let response = match request {
            Request::Partition { group, request } => match *request {
                Request::Write(command) => answer_write(&groups, group, command).await,
                request => match groups.raft(&group) {
                    Some(raft) => answer(&raft, request).await,
                    None => Response::NoSuchGroup(group),
                },
            },
            Request::LeaderReports => Response::LeaderReports(leader_reports(&groups)),
            request => answer(&raft, request).await,
        };
        write_frame(&mut stream, &response).await?;
    }
}

/// `raft`'s answer to one request.
async fn answer(raft: &Raft<TypeConfig>, request: Request) -> Response {
    match request {
        Request::AppendEntries(rpc) => Response::AppendEntries(raft.append_entries(rpc).await),
        Request::InstallSnapshot(rpc) => Response::InstallSnapshot(raft.install_snapshot(rpc).await),
        Request::Vote(rpc) => Response::Vote(raft.vote(rpc).await),
        Request::Propose(command) => Response::Propose(propose_here(raft, command).await),
        Request::ChangeMembership(change) => Response::ChangeMembership(change_here(raft, change).await),
        // Only the outer request names a group.
        Request::Partition { group, .. } => Response::NoSuchGroup(group),
        // Answered by the node, not a group.
        Request::LeaderReports => Response::LeaderReports(Vec::new()),
        // Partition writes come inside a group's request.
        Request::Write(_) => Response::Written(Err(crate::wire::WriteRefusal::Failed("a write names no partition".to_owned()))),
    }
}

/// Writes `command` through this node's Raft: applied when this node
/// leads, else refused with where the leader is.
pub async fn propose_here(raft: &Raft<TypeConfig>, command: Command) -> Result<crate::Outcome, ProposeRefusal> {
    match raft.client_write(command).await {
        Ok(response) => Ok(response.data),
        Err(error) => {
            let leader_addr = error
                .forward_to_leader::<BasicNode>()
                .and_then(|forward| forward.leader_node.as_ref().map(|node| node.addr.clone()));
            Err(ProposeRefusal {
                reason: error.to_string(),
                leader_addr,
            })
        }
    }
}

/// The id of the node this one believes leads, if any.
pub fn leader_of(raft: &Raft<TypeConfig>) -> Option<NodeId> {
    raft.metrics().borrow().current_leader
}
