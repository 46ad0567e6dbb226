//! Consumer group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, DescribeGroups, ListGroups, DeleteGroups. Membership lives in
//! the core's `GroupCoordinator` (DeleteGroups deletes share groups too);
//! this module translates fields and errors.

use bytes::Bytes;
use conveyor_core::group::{Coordinator, GroupError, GroupState, JoinRequest};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator as FoundCoordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use conveyor_core::auth::{Operation, Resource};
use kafka_protocol::ResponseError;

use super::metadata::advertised;
use crate::Context;
use crate::connection::ConnectionInfo;
use crate::errors::group_error;

/// GROUP_AUTHORIZATION_FAILED's code, when `operation` on group `group` is refused.
fn group_denied(context: &Context, connection: &ConnectionInfo, group: &str, operation: Operation) -> Option<i16> {
    (!connection.allowed(context, &Resource::Group(group), operation)).then(|| ResponseError::GroupAuthorizationFailed.code())
}

/// NOT_COORDINATOR when another node coordinates groups (a cluster's
/// metadata leader), COORDINATOR_NOT_AVAILABLE while none is known: both
/// make clients find the coordinator again (librdkafka's
/// `rd_kafka_err_action` refreshes it on either).
/// Transactional ids are coordinated by the same node.
pub async fn coordinator_refusal(context: &Context) -> Option<i16> {
    coordinator_error(context).await.map(|error| error.code())
}

/// [`coordinator_refusal`] as the error itself.
pub async fn coordinator_error(context: &Context) -> Option<ResponseError> {
    match context.broker.groups().coordinator().await {
        Coordinator::Here => None,
        Coordinator::Elsewhere(_) => Some(ResponseError::NotCoordinator),
        Coordinator::Unknown => Some(ResponseError::CoordinatorNotAvailable),
    }
}

fn text(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

/// FindCoordinator: this node on a single node; on a cluster, the
/// metadata group's leader, which coordinates every group and
/// transactional id (COORDINATOR_NOT_AVAILABLE, retriable, while none is
/// known or its Kafka door is not advertised yet).
pub async fn find_coordinator(
    context: &Context,
    connection: &ConnectionInfo,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let coordinator = match context.broker.groups().coordinator().await {
        Coordinator::Here => {
            let (host, port) = advertised(context, connection);
            Ok((context.config.node_id, host, port))
        }
        Coordinator::Elsewhere(node_id) => context
            .broker
            .partition_replication()
            .and_then(|replication| replication.kafka_nodes().into_iter().find(|node| node.node_id == node_id))
            .map(|node| (node.node_id, node.host, node.port))
            .ok_or(ResponseError::CoordinatorNotAvailable.code()),
        Coordinator::Unknown => Err(ResponseError::CoordinatorNotAvailable.code()),
    };
    let mut response = FindCoordinatorResponse::default();
    // DESCRIBE on the group (key type 0) or the transactional id (1), as Kafka asks.
    let denied = |key: &str| {
        let resource = match request.key_type {
            1 => Resource::TransactionalId(key),
            _ => Resource::Group(key),
        };
        (!connection.allowed(context, &resource, Operation::Describe)).then(|| match request.key_type {
            1 => ResponseError::TransactionalIdAuthorizationFailed.code(),
            _ => ResponseError::GroupAuthorizationFailed.code(),
        })
    };
    let answer = |key: &str| denied(key).map_or_else(|| coordinator.clone(), Err);
    if version >= 4 {
        // Batched: one coordinator per key, the same node for every key.
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| match answer(key) {
                Err(code) => FoundCoordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(-1))
                    .with_error_code(code),
                Ok((node_id, host, port)) => FoundCoordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node_id))
                    .with_host(text(host))
                    .with_port(port),
            })
            .collect();
    } else {
        match answer(&request.key) {
            Err(code) => {
                response.error_code = code;
                response.node_id = BrokerId(-1);
            }
            Ok((node_id, host, port)) => {
                response.node_id = BrokerId(node_id);
                response.host = text(host);
                response.port = port;
            }
        }
    }
    response
}

pub async fn join(
    context: &Context,
    connection: &ConnectionInfo,
    client_id: String,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let session_timeout_ms = request.session_timeout_ms;
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
        client_id,
        client_host: format!("/{}", connection.peer.ip()),
        session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|protocol| (protocol.name.to_string(), protocol.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let mut response = JoinGroupResponse::default().with_generation_id(-1);
    if version < 7 {
        // Non-nullable before v7.
        response.protocol_name = Some(StrBytes::default());
    }
    if let Some(code) = group_denied(context, connection, &join.group_id, Operation::Read) {
        response.error_code = code;
        return response;
    }
    if let Some(code) = coordinator_refusal(context).await {
        response.error_code = code;
        response.member_id = request.member_id;
        return response;
    }
    match context.broker.join_classic_group(join).await {
        Ok(result) => {
            response.generation_id = result.generation_id;
            response.protocol_name = Some(text(result.protocol_name));
            if version >= 7 {
                response.protocol_type = Some(text(result.protocol_type));
            }
            response.leader = text(result.leader_id);
            response.member_id = text(result.member_id);
            response.members = result
                .members
                .into_iter()
                .map(|(member_id, instance_id, metadata)| {
                    let mut member = JoinGroupResponseMember::default()
                        .with_member_id(text(member_id))
                        .with_metadata(metadata);
                    if version >= 5 {
                        member.group_instance_id = instance_id.map(text);
                    }
                    member
                })
                .collect();
        }
        Err(error) => {
            response.error_code = group_error(&error).code();
            if let GroupError::MemberIdRequired(member_id) = error {
                response.member_id = text(member_id);
            } else {
                response.member_id = request.member_id;
            }
        }
    }
    response
}

pub async fn sync(context: &Context, connection: &ConnectionInfo, request: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    if let Some(code) = group_denied(context, connection, &request.group_id, Operation::Read) {
        return SyncGroupResponse::default().with_error_code(code);
    }
    if let Some(code) = coordinator_refusal(context).await {
        return SyncGroupResponse::default().with_error_code(code);
    }
    let assignments = request
        .assignments
        .iter()
        .map(|assignment| (assignment.member_id.to_string(), assignment.assignment.clone()))
        .collect();
    let outcome = context
        .broker
        .groups()
        .sync(
            &request.group_id.0,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
            assignments,
        )
        .await;
    let mut response = SyncGroupResponse::default();
    match outcome {
        Ok(assignment) => {
            response.assignment = assignment;
            if version >= 5 {
                let description = context.broker.groups().describe(&request.group_id.0);
                response.protocol_type = Some(text(description.protocol_type));
                response.protocol_name = Some(text(description.protocol_name));
            }
        }
        Err(error) => {
            response.error_code = group_error(&error).code();
            response.assignment = Bytes::new();
        }
    }
    response
}

pub async fn heartbeat(context: &Context, connection: &ConnectionInfo, request: HeartbeatRequest) -> HeartbeatResponse {
    if let Some(code) = group_denied(context, connection, &request.group_id, Operation::Read) {
        return HeartbeatResponse::default().with_error_code(code);
    }
    if let Some(code) = coordinator_refusal(context).await {
        return HeartbeatResponse::default().with_error_code(code);
    }
    let outcome = context.broker.groups().heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(outcome.err().map_or(0, |error| group_error(&error).code()))
}

pub async fn leave(context: &Context, connection: &ConnectionInfo, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    if let Some(code) = group_denied(context, connection, &request.group_id, Operation::Read) {
        return LeaveGroupResponse::default().with_error_code(code);
    }
    if let Some(code) = coordinator_refusal(context).await {
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|member| {
                (
                    member.member_id.to_string(),
                    member.group_instance_id.as_ref().map(|id| id.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let mut response = LeaveGroupResponse::default();
    match context.broker.groups().leave(&request.group_id.0, &members) {
        Ok(results) if version >= 3 => {
            response.members = members
                .into_iter()
                .zip(results)
                .map(|((member_id, instance_id), result)| {
                    MemberResponse::default()
                        .with_member_id(text(member_id))
                        .with_group_instance_id(instance_id.map(text))
                        .with_error_code(result.err().map_or(0, |error| group_error(&error).code()))
                })
                .collect();
        }
        Ok(results) => {
            response.error_code = results
                .into_iter()
                .find_map(Result::err)
                .map_or(0, |error| group_error(&error).code());
        }
        Err(error) => response.error_code = group_error(&error).code(),
    }
    response
}

/// DescribeGroups: on a cluster only the coordinator (the metadata leader)
/// knows a group's members; elsewhere each group answers NOT_COORDINATOR
/// (COORDINATOR_NOT_AVAILABLE during an election), as Kafka's do.
pub async fn describe(
    context: &Context,
    connection: &ConnectionInfo,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let refusal = coordinator_refusal(context).await;
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            if let Some(code) = group_denied(context, connection, &group_id, Operation::Describe).or(refusal) {
                return DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(code)
                    .with_authorized_operations(super::AUTHORIZED_OPERATIONS_OMITTED);
            }
            // Only classic groups are described. Kafka answers Dead for any
            // other (and an unknown id), with GROUP_ID_NOT_FOUND and why from v6 (KIP-1043).
            let description = match context.broker.classic_group(&group_id.0) {
                Ok(description) => description,
                Err(error) => {
                    let dead = DescribedGroup::default()
                        .with_group_id(group_id.clone())
                        .with_group_state(text(GroupState::Dead.name()))
                        .with_authorized_operations(super::AUTHORIZED_OPERATIONS_OMITTED);
                    if version < 6 {
                        return dead;
                    }
                    let message = match &error {
                        GroupError::GroupIdNotFound(_) => format!("Group {} not found.", group_id.0),
                        other => other.to_string(),
                    };
                    return dead
                        .with_error_code(group_error(&error).code())
                        .with_error_message(Some(text(message)));
                }
            };
            let members = description
                .members
                .into_iter()
                .map(|member| {
                    let mut described = DescribedGroupMember::default()
                        .with_member_id(text(member.member_id))
                        .with_client_id(text(member.client_id))
                        .with_client_host(text(member.client_host))
                        .with_member_metadata(member.metadata)
                        .with_member_assignment(member.assignment);
                    if version >= 4 {
                        described.group_instance_id = member.group_instance_id.map(text);
                    }
                    described
                })
                .collect();
            let mut described = DescribedGroup::default()
                .with_group_id(group_id)
                .with_group_state(text(description.state.name()))
                .with_protocol_type(text(description.protocol_type))
                .with_protocol_data(text(description.protocol_name))
                .with_members(members);
            if version >= 3 {
                described.authorized_operations = if request.include_authorized_operations {
                    super::authorized_operations(context, connection, &Resource::Group(&described.group_id), &super::GROUP_OPERATIONS)
                } else {
                    super::AUTHORIZED_OPERATIONS_OMITTED
                };
            }
            described
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// ListGroups: the groups this node coordinates. On a cluster that is every
/// group on the metadata leader and none elsewhere (an admin client asks
/// every node and merges the answers); COORDINATOR_NOT_AVAILABLE during
/// an election.
pub async fn list(context: &Context, connection: &ConnectionInfo, request: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    match coordinator_error(context).await {
        None => {}
        Some(ResponseError::NotCoordinator) => return ListGroupsResponse::default(),
        Some(error) => return ListGroupsResponse::default().with_error_code(error.code()),
    }
    // DESCRIBE on the cluster lists every group; else those the client may describe.
    let every_group = connection.allowed(context, &Resource::Cluster, Operation::Describe);
    let states: Vec<String> = request.states_filter.iter().map(|state| state.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|kind| kind.to_lowercase()).collect();
    let groups = context
        .broker
        .list_groups()
        .into_iter()
        .filter(|group| group.state != GroupState::Dead)
        .filter(|group| states.is_empty() || states.contains(&group.state.name().to_lowercase()))
        .filter(|group| types.is_empty() || types.iter().any(|kind| kind == group.group_type.name()))
        .filter(|group| every_group || connection.allowed(context, &Resource::Group(&group.group_id), Operation::Describe))
        .map(|group| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(text(group.group_id)))
                .with_protocol_type(text(group.protocol_type));
            if version >= 4 {
                listed.group_state = text(group.state.name());
            }
            if version >= 5 {
                listed.group_type = text(group.group_type.name());
            }
            listed
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn delete(context: &Context, connection: &ConnectionInfo, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let refused = match group_denied(context, connection, &group_id, Operation::Delete) {
            Some(code) => Some(code),
            None => coordinator_refusal(context).await,
        };
        let error_code = match refused {
            Some(code) => code,
            None => {
                let outcome = context.broker.delete_group(&group_id.0).await;
                outcome.err().map_or(0, |error| group_error(&error).code())
            }
        };
        results.push(DeletableGroupResult::default().with_group_id(group_id).with_error_code(error_code));
    }
    DeleteGroupsResponse::default().with_results(results)
}

/// The topics a consumer-protocol member subscribes to, from its
/// ConsumerProtocolSubscription metadata (version i16, then an array of
/// strings). Unparseable metadata subscribes to nothing.
pub fn subscribed_topics(metadata: &[Bytes]) -> Vec<String> {
    let mut topics = Vec::new();
    for bytes in metadata {
        let mut rest: &[u8] = bytes;
        let mut take = |count: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(count)?;
            rest = tail;
            Some(head)
        };
        let parsed = (|| {
            take(2)?;
            let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
            let mut names = Vec::new();
            for _ in 0..count.max(0) {
                let length = i16::from_be_bytes(take(2)?.try_into().ok()?);
                names.push(String::from_utf8(take(usize::try_from(length).ok()?)?.to_vec()).ok()?);
            }
            Some(names)
        })();
        topics.extend(parsed.unwrap_or_default());
    }
    topics
}
