//! `GET /api/v1/cluster`: the metadata group as this node sees it —
//! members with their cluster and door addresses, the leader, term,
//! commit index, and on the leader each replica's matched index and lag —
//! and every replicated partition's group: replicas, leader, term and
//! in-sync replicas as its leader reports them, and this node's replica's
//! Raft state (on the leader each replica's lag). Also the groups'
//! statuses `/metrics` shows. `POST /api/v1/cluster/members` and `DELETE
//! /api/v1/cluster/members/{id}` add and remove a node (openraft's
//! membership change through the metadata leader). A broker started without
//! `--node-id`/`--peers` answers 404.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use conveyor_cluster::{ClusterNode, ClusterStatus, MemberStatus, MembershipChange, MembershipError, PartitionGroupStatus};
use conveyor_core::Broker;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
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
    /// Every partition of every replicated topic.
    pub partition_groups: Vec<PartitionGroupView>,
}

/// One replicated partition's Raft group.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionGroupView {
    /// The topic's name (its id while this node does not know it yet).
    pub topic: String,
    pub partition: u32,
    pub replicas: Vec<u64>,
    /// As the leader reports it (null while none is known).
    pub leader_id: Option<u64>,
    /// The leader's term: Kafka's leader epoch.
    pub term: u64,
    pub in_sync: Vec<u64>,
    /// This node's replica, when it is one: `leader`, `follower`, ...
    pub role: Option<String>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// On the leader: each replica's matched index and lag.
    pub lag: Vec<ReplicaLagView>,
}

/// How far one replica is behind its group's leader.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplicaLagView {
    pub node_id: u64,
    pub matched_index: Option<u64>,
    pub lag: Option<u64>,
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

impl ClusterView {
    fn of(status: ClusterStatus, partition_groups: Vec<PartitionGroupView>) -> ClusterView {
        ClusterView {
            node_id: status.node_id,
            role: status.role,
            leader_id: status.leader_id,
            term: status.term,
            commit_index: status.commit_index,
            applied_index: status.applied_index,
            last_log_index: status.last_log_index,
            members: status.members.into_iter().map(MemberView::from).collect(),
            replicated: vec!["metadata catalog", "Kafka partitions of replicated topics"],
            partition_groups,
        }
    }
}

/// The name of the topic with `id`, or the id while this node does not know it.
fn topic_name(broker: &Broker, id: uuid::Uuid) -> String {
    broker.topic_by_id(id).map_or_else(|| id.to_string(), |topic| topic.name.clone())
}

impl PartitionGroupView {
    fn of(broker: &Broker, status: PartitionGroupStatus) -> PartitionGroupView {
        let replica = status.replica;
        PartitionGroupView {
            topic: topic_name(broker, status.topic_id),
            partition: status.partition,
            replicas: status.replicas,
            leader_id: status.leader_id,
            term: status.term,
            in_sync: status.in_sync,
            role: replica.as_ref().map(|replica| replica.role.clone()),
            commit_index: replica.as_ref().map(|replica| replica.commit_index),
            applied_index: replica.as_ref().map(|replica| replica.applied_index),
            lag: replica
                .map(|replica| {
                    replica
                        .members
                        .into_iter()
                        .filter(|member| member.matched_index.is_some())
                        .map(|member| ReplicaLagView {
                            node_id: member.node_id,
                            matched_index: member.matched_index,
                            lag: member.lag,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// This node's Raft groups for `/metrics`: the metadata group, then each
/// partition group it is a replica of, labelled `topic/partition`.
pub fn raft_groups(broker: &Broker, node: &ClusterNode) -> Vec<(String, ClusterStatus)> {
    let partitions = node.partition_groups().statuses().into_iter().filter_map(|status| {
        let label = format!("{}/{}", topic_name(broker, status.topic_id), status.partition);
        status.replica.map(|replica| (label, replica))
    });
    std::iter::once(("metadata".to_owned(), node.status())).chain(partitions).collect()
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

/// The metadata group's members, leader, term, commit index and replica
/// lag; every replicated partition's leader, term, ISR and replica lag.
#[utoipa::path(get, path = "/cluster", operation_id = "get_cluster", tag = "overview",
    responses((status = 200, body = ClusterView), (status = 404, body = ErrorBody, description = "Not a cluster node")))]
pub async fn status(State(state): State<Arc<HttpState>>) -> Result<Json<ClusterView>, ApiError> {
    match state.cluster() {
        Some(node) => {
            let partition_groups = node
                .partition_groups()
                .statuses()
                .into_iter()
                .map(|status| PartitionGroupView::of(&state.broker, status))
                .collect();
            Ok(Json(ClusterView::of(node.status(), partition_groups)))
        }
        None => Err(ApiError::not_found(
            "this broker runs alone: start it with --node-id and --peers to make it a cluster node",
        )),
    }
}

/// A node to add to the cluster.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMember {
    pub node_id: u64,
    /// Where the other nodes reach it (its `--cluster-addr`).
    pub cluster_addr: String,
}

fn membership_error(error: MembershipError) -> ApiError {
    match error {
        MembershipError::Invalid(reason) => ApiError::bad_request(reason),
        MembershipError::Failed(reason) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

fn cluster_node(state: &HttpState) -> Result<&Arc<ClusterNode>, ApiError> {
    state
        .cluster()
        .ok_or_else(|| ApiError::not_found("this broker runs alone: it has no cluster to change"))
}

/// Adds a node, started with its own `--node-id` and `--peers`, to the
/// metadata group: first as a learner caught up with the log, then as a
/// voter. Answers once the new members are committed.
#[utoipa::path(post, path = "/cluster/members", operation_id = "add_cluster_member", tag = "overview",
    request_body = NewMember,
    responses(
        (status = 201, description = "a voter now", body = ClusterView),
        (status = 400, description = "an address that is not HOST:PORT", body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Not a cluster node"),
        (status = 503, description = "no leader took the change in time", body = ErrorBody),
    ))]
pub async fn add_member(
    State(state): State<Arc<HttpState>>,
    ApiJson(member): ApiJson<NewMember>,
) -> Result<(StatusCode, Json<ClusterView>), ApiError> {
    let node = cluster_node(&state)?;
    let change = MembershipChange::Add {
        node_id: member.node_id,
        cluster_addr: member.cluster_addr,
    };
    node.change_membership(change).await.map_err(membership_error)?;
    Ok((StatusCode::CREATED, Json(ClusterView::of(node.status(), Vec::new()))))
}

/// Removes a node from the metadata group's voters (its partitions'
/// replicas stay where they are). Answers once the new members are committed.
#[utoipa::path(delete, path = "/cluster/members/{node_id}", operation_id = "remove_cluster_member", tag = "overview",
    params(("node_id" = u64, Path, description = "the node's id")),
    responses(
        (status = 204, description = "no longer a member"),
        (status = 400, description = "not a member, or the last one", body = ErrorBody),
        (status = 404, body = ErrorBody, description = "Not a cluster node"),
        (status = 503, description = "no leader took the change in time", body = ErrorBody),
    ))]
pub async fn remove_member(State(state): State<Arc<HttpState>>, ApiPath(node_id): ApiPath<u64>) -> Result<StatusCode, ApiError> {
    let node = cluster_node(&state)?;
    node.change_membership(MembershipChange::Remove { node_id })
        .await
        .map_err(membership_error)?;
    Ok(StatusCode::NO_CONTENT)
}
