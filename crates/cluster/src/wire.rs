//! The inter-node protocol on `--cluster-addr`: one request, one response,
//! each a JSON document behind a 4-byte big-endian length, on a TCP
//! connection a client keeps open. Knows frames and messages; nothing of
//! what Raft does with them.

use conveyor_core::append_condition::ConditionFailed;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::type_config::{Command, GroupId, NodeId, Outcome, TypeConfig};

/// No frame is larger (a snapshot chunk, a batch of entries).
pub const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// What one node asks another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    /// A command forwarded to the node believed to lead.
    Propose(Command),
    /// A partition write ([`Command::Append`]) sent to the node believed to
    /// lead the partition's group (inside [`Request::Partition`]).
    Write(Command),
    /// A request for one partition's group (the others are the metadata
    /// group's): every group's messages share the connections to a peer.
    Partition {
        group: GroupId,
        request: Box<Request>,
    },
    /// The placements of the partition groups the node leads.
    LeaderReports,
    /// A change of the metadata group's members, sent to its leader.
    ChangeMembership(crate::membership::MembershipChange),
}

/// The answer to a [`Request`] of the same name.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Applied on the leader, or why not (with the leader it knows of, if
    /// it is not one itself).
    Propose(Result<Outcome, ProposeRefusal>),
    /// The node runs no such partition group (not yet, or no longer).
    NoSuchGroup(GroupId),
    /// A partition write applied on its leader, or why not.
    Written(Result<Written, WriteRefusal>),
    LeaderReports(Vec<crate::placement_reports::LeaderReport>),
    ChangeMembership(Result<(), crate::membership::MembershipError>),
}

/// Where a partition write landed on the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub base_offset: u64,
    pub last_offset: u64,
    pub log_start_offset: u64,
    pub log_append_time_ms: Option<i64>,
}

/// Why a partition write was not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteRefusal {
    /// The node does not lead the group; `leader` is the one it knows of.
    /// Nothing was written.
    NotLeader { leader: Option<NodeId> },
    /// Fewer replicas in sync than the write needs; nothing was written.
    NotEnoughReplicas { in_sync: usize, required: u16 },
    /// A condition of the write failed; nothing was written.
    Condition(ConditionFailed),
    /// Not committed within the time the leader waits; it may be later.
    TimedOut,
    /// Anything else, in words.
    Failed(String),
}

/// Why a forwarded command was not applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProposeRefusal {
    pub reason: String,
    /// Where the leader is, when the node asked knows and is not it.
    pub leader_addr: Option<String>,
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(stream: &mut (impl AsyncWrite + Unpin), message: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    if bytes.len() > FRAME_BYTES_MAX {
        return Err(std::io::Error::other(format!("a frame of {} bytes is over the limit", bytes.len())));
    }
    let length = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
    stream.write_all(&length.to_be_bytes()).await?;
    stream.write_all(&bytes).await?;
    stream.flush().await
}

/// Reads one frame; `None` when the peer closed between frames.
pub async fn read_frame<T: DeserializeOwned>(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<T>> {
    let mut length = [0u8; 4];
    match stream.read_exact(&mut length).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let length = u32::from_be_bytes(length) as usize;
    if length > FRAME_BYTES_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {length} bytes is over the limit"),
        ));
    }
    let mut bytes = vec![0u8; length];
    stream.read_exact(&mut bytes).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips_and_an_oversized_length_is_refused() {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        let request = Request::Propose(Command::Catalog { events: Vec::new() });
        write_frame(&mut client, &request).await.expect("write");
        let read: Option<Request> = read_frame(&mut server).await.expect("read");
        assert!(matches!(read, Some(Request::Propose(Command::Catalog { events })) if events.is_empty()));
        client.write_all(&u32::MAX.to_be_bytes()).await.expect("write");
        let error = read_frame::<Request>(&mut server).await.expect_err("oversized");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        drop(client);
        assert!(read_frame::<Request>(&mut server).await.expect("eof").is_none());
    }
}
