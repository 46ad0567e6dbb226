//! `GET /api/v1/cluster`: the metadata group as this node sees it —
//! members with their cluster and door addresses, the leader, term,
//! commit index, and on the leader each replica's matched index and lag.
//! A broker started without `--node-id`/`--peers` answers 404.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use conveyor_cluster::{ClusterStatus, MemberStatus};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use crate::HttpState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterView {
    /// The node answering.
    pub node_id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    /// The metadata leader this node knows of (null during an election).
    pub leader_id: Option<u64>,
    pub term: u64,
    /// On the leader, the highest index a majority holds; elsewhere the highest this node applied.
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub members: Vec<MemberView>,
    /// What is replicated between the nodes today.
    pub replicated: Vec<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub node_id: u64,
    pub cluster_addr: String,
    pub kafka_addr: Option<String>,
    pub amqp_addr: Option<String>,
    pub http_addr: Option<String>,
    pub voter: bool,
    /// Known on the leader only.
    pub matched_index: Option<u64>,
    /// Known on the leader only: entries this replica is behind.
    pub lag: Option<u64>,
}

impl From<ClusterStatus> for ClusterView {
    fn from(status: ClusterStatus) -> ClusterView {
        ClusterView {
            node_id: status.node_id,
            role: status.role,
            leader_id: status.leader_id,
            term: status.term,
            commit_index: status.commit_index,
            applied_index: status.applied_index,
            last_log_index: status.last_log_index,
            members: status.members.into_iter().map(MemberView::from).collect(),
            replicated: vec!["metadata catalog"],
        }
    }
}

impl From<MemberStatus> for MemberView {
    fn from(member: MemberStatus) -> MemberView {
        MemberView {
            node_id: member.node_id,
            cluster_addr: member.cluster_addr,
            kafka_addr: member.kafka_addr,
            amqp_addr: member.amqp_addr,
            http_addr: member.http_addr,
            voter: member.voter,
            matched_index: member.matched_index,
            lag: member.lag,
        }
    }
}

/// The metadata group's members, leader, term, commit index and replica lag.
#[utoipa::path(get, path = "/cluster", operation_id = "get_cluster", tag = "overview",
    responses((status = 200, body = ClusterView), (status = 404, body = ErrorBody, description = "Not a cluster node")))]
pub async fn status(State(state): State<Arc<HttpState>>) -> Result<Json<ClusterView>, ApiError> {
    match state.cluster() {
        Some(node) => Ok(Json(ClusterView::from(node.status()))),
        None => Err(ApiError::not_found(
            "this broker runs alone: start it with --node-id and --peers to make it a cluster node",
        )),
    }
}
