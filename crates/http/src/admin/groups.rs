//! `/api/v1/groups`: Kafka groups of every kind (classic, KIP-848
//! consumer, KIP-932 share) — list (type, state, members, total lag),
//! describe (members with their assignments, committed offsets and lag per
//! partition; a share group's share-partition start offsets), reset offsets (to earliest, latest, a timestamp or an
//! offset; only while the group has no members, as Kafka's
//! `kafka-consumer-groups --reset-offsets` requires), commit given offsets
//! (also only while empty) and delete.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use conveyor_core::Broker;
use conveyor_core::group::{GroupDescription, GroupState, GroupType, OffsetCommit};
use conveyor_core::share_group::ShareGroup;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiJson, ApiPath, ErrorBody, blocking};
use super::topics;
use crate::HttpState;

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSummary {
    pub group_id: String,
    /// `classic`, `consumer` (KIP-848) or `share` (KIP-932).
    pub group_type: String,
    /// Kafka's group state: Empty, PreparingRebalance, CompletingRebalance,
    /// Reconciling, Assigning, Stable.
    pub state: String,
    pub protocol_type: String,
    pub members: u64,
    /// Records between the committed offsets and the end offsets, over
    /// every partition (0 for a share group, which commits no offsets).
    pub lag: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberInfo {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's epoch (KIP-848 consumer groups and share groups;
    /// null for classic groups).
    pub member_epoch: Option<i32>,
    /// The partitions assigned to the member (consumer protocol groups,
    /// empty when the assignment is not in that format; for a share group
    /// every partition of the topics it subscribes to).
    pub assignments: Vec<TopicPartitions>,
}

/// Where a share group's share-partition starts: below it every record is
/// settled for the group.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShareStartOffset {
    pub topic: String,
    pub partition: i32,
    /// Null when the group has no state over the partition any more.
    pub start_offset: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommittedOffsetInfo {
    pub topic: String,
    pub partition: u32,
    pub committed_offset: i64,
    /// The partition's end offset; null when the topic or partition is gone.
    pub end_offset: Option<u64>,
    /// End offset minus committed offset (at least 0); null when the partition is gone.
    pub lag: Option<u64>,
    pub metadata: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetail {
    pub group_id: String,
    /// `classic`, `consumer` (KIP-848) or `share` (KIP-932).
    pub group_type: String,
    pub state: String,
    pub protocol_type: String,
    /// The assignor the members agreed on (e.g. `range`; `simple` for a share group).
    pub protocol: String,
    /// The generation (classic) or group epoch (consumer and share groups).
    pub generation_id: i32,
    pub members: Vec<MemberInfo>,
    pub offsets: Vec<CommittedOffsetInfo>,
    pub lag: u64,
    /// A share group's share-partitions and where each starts (empty for
    /// the other kinds).
    pub share_offsets: Vec<ShareStartOffset>,
}

/// Where [`ResetOffsets`] moves the committed offsets.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResetTarget {
    /// Each partition's log start offset.
    Earliest,
    /// Each partition's end offset.
    Latest,
    /// The first offset with a timestamp at or after `timestamp_ms` (the end offset if none).
    Timestamp,
    /// `offset`, clamped to each partition's stored range.
    Offset,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetOffsets {
    pub to: ResetTarget,
    /// Only this topic's partitions (all of them, committed or not); without
    /// it, every partition the group has committed offsets for.
    #[serde(default)]
    pub topic: Option<String>,
    /// Required with `"to": "offset"`.
    #[serde(default)]
    pub offset: Option<i64>,
    /// Required with `"to": "timestamp"` (ms since the epoch).
    #[serde(default)]
    pub timestamp_ms: Option<i64>,
}

/// Most offsets one commit request carries.
pub const COMMIT_OFFSETS_MAX: usize = 10_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitOffsets {
    /// 1 to 10000 offsets.
    pub offsets: Vec<OffsetToCommit>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: u32,
    /// The next offset the group reads from the partition.
    #[schema(minimum = 0)]
    pub offset: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResetResult {
    pub group_id: String,
    /// The offsets now committed.
    pub offsets: Vec<CommittedOffsetInfo>,
}

fn committed_offsets(broker: &Broker, group_id: &str) -> Vec<CommittedOffsetInfo> {
    broker
        .groups()
        .offsets()
        .of_group(group_id)
        .into_iter()
        .map(|(topic, partition, committed)| {
            let end_offset = broker
                .topic(&topic)
                .and_then(|found| found.partition(partition))
                .map(|log| log.high_watermark());
            CommittedOffsetInfo {
                lag: end_offset.map(|end| (end as i64).saturating_sub(committed.offset).max(0) as u64),
                end_offset,
                topic,
                partition,
                committed_offset: committed.offset,
                metadata: committed.metadata,
            }
        })
        .collect()
}

fn total_lag(offsets: &[CommittedOffsetInfo]) -> u64 {
    offsets.iter().filter_map(|offset| offset.lag).sum()
}

/// The group, or 404 for one Kafka would call Dead (no members, no offsets).
fn find(broker: &Broker, group_id: &str) -> Result<GroupDescription, ApiError> {
    let description = broker.groups().describe(group_id);
    if description.state == GroupState::Dead {
        return Err(ApiError::not_found(format!("group {group_id:?} does not exist")));
    }
    Ok(description)
}

/// Every group of every kind, by id.
#[utoipa::path(get, operation_id = "list_groups", path = "/groups", tag = "groups",
    responses((status = 200, body = Vec<GroupSummary>), (status = 500, body = ErrorBody)))]
pub async fn list(State(state): State<Arc<HttpState>>) -> Result<Json<Vec<GroupSummary>>, ApiError> {
    let broker = Arc::clone(&state.broker);
    let groups = blocking(move || {
        Ok(broker
            .list_groups()
            .into_iter()
            .map(|group| GroupSummary {
                lag: match group.group_type {
                    GroupType::Share => 0,
                    _ => total_lag(&committed_offsets(&broker, &group.group_id)),
                },
                group_type: group.group_type.name().to_owned(),
                state: group.state.name().to_owned(),
                protocol_type: group.protocol_type,
                members: group.members.len() as u64,
                group_id: group.group_id,
            })
            .collect())
    })
    .await?;
    Ok(Json(groups))
}

/// A group's members and assignments, committed offsets and lag per
/// partition; a share group's share-partition start offsets.
#[utoipa::path(get, operation_id = "describe_group", path = "/groups/{group_id}", tag = "groups",
    params(("group_id" = String, Path, description = "consumer group id")),
    responses((status = 200, body = GroupDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn describe(State(state): State<Arc<HttpState>>, ApiPath(group_id): ApiPath<String>) -> Result<Json<GroupDetail>, ApiError> {
    if let Ok(group) = state.broker.share_group(&group_id) {
        return Ok(Json(share_detail(&state.broker, group_id, group).await));
    }
    let broker = Arc::clone(&state.broker);
    let detail = blocking(move || {
        let group = find(&broker, &group_id)?;
        let offsets = committed_offsets(&broker, &group_id);
        // A KIP-848 member's epoch; classic members have none.
        let epochs: std::collections::HashMap<String, i32> = match group.group_type {
            GroupType::Consumer => broker
                .groups()
                .describe_kip848_group(&group_id)
                .map(|described| {
                    (described.members.into_iter())
                        .map(|member| (member.member_id, member.member_epoch))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Default::default(),
        };
        Ok(GroupDetail {
            lag: total_lag(&offsets),
            offsets,
            share_offsets: Vec::new(),
            group_type: group.group_type.name().to_owned(),
            state: group.state.name().to_owned(),
            protocol: group.protocol_name,
            generation_id: group.generation_id,
            members: group
                .members
                .into_iter()
                .map(|member| MemberInfo {
                    assignments: if group.protocol_type == "consumer" {
                        decode_assignment(&member.assignment).unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                    member_epoch: epochs.get(&member.member_id).copied(),
                    member_id: member.member_id,
                    group_instance_id: member.group_instance_id,
                    client_id: member.client_id,
                    client_host: member.client_host,
                })
                .collect(),
            protocol_type: group.protocol_type,
            group_id: group.group_id,
        })
    })
    .await?;
    Ok(Json(detail))
}

/// What `describe` shows of a share group: its members with their epochs
/// and assignments (every partition of each topic they subscribe to that
/// exists), and where each of its share-partitions starts.
async fn share_detail(broker: &Broker, group_id: String, group: ShareGroup) -> GroupDetail {
    let share_offsets = (broker.share_group_offsets(&group_id, None).await.into_iter())
        .flat_map(|topic| {
            let name = topic.name;
            (topic.partitions.into_iter()).map(move |(partition, start)| ShareStartOffset {
                topic: name.clone(),
                partition,
                start_offset: start.ok().flatten(),
            })
        })
        .collect();
    let members = (group.members.values())
        .map(|member| MemberInfo {
            member_id: member.member_id.clone(),
            group_instance_id: None,
            client_id: member.client_id.clone(),
            client_host: member.client_host.clone(),
            member_epoch: Some(member.member_epoch),
            assignments: (member.subscribed_topics.iter())
                .filter_map(|name| broker.topic(name))
                .map(|topic| TopicPartitions {
                    topic: topic.name.clone(),
                    partitions: (0..topic.partition_count()).filter_map(|index| i32::try_from(index).ok()).collect(),
                })
                .collect(),
        })
        .collect();
    GroupDetail {
        group_id,
        group_type: GroupType::Share.name().to_owned(),
        state: group.state().to_owned(),
        protocol_type: "share".to_owned(),
        // Kafka's share group assignor, the one the assignment follows.
        protocol: "simple".to_owned(),
        generation_id: group.group_epoch,
        members,
        offsets: Vec::new(),
        lag: 0,
        share_offsets,
    }
}

/// Moves the group's committed offsets; only while the group has no members.
#[utoipa::path(post, operation_id = "reset_group_offsets", path = "/groups/{group_id}/reset-offsets", tag = "groups",
    params(("group_id" = String, Path, description = "consumer group id")),
    request_body = ResetOffsets,
    responses(
        (status = 200, body = ResetResult),
        (status = 400, description = "a missing offset or timestamp, or malformed JSON", body = ErrorBody),
        (status = 404, description = "unknown group (without `topic`) or topic, or a share group's id", body = ErrorBody),
        (status = 409, description = "the group has members", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn reset_offsets(
    State(state): State<Arc<HttpState>>,
    ApiPath(group_id): ApiPath<String>,
    ApiJson(request): ApiJson<ResetOffsets>,
) -> Result<Json<ResetResult>, ApiError> {
    if group_id.is_empty() {
        return Err(ApiError::bad_request("the group id is empty"));
    }
    let broker = Arc::clone(&state.broker);
    let commits = {
        let group_id = group_id.clone();
        blocking(move || reset_commits(&broker, &group_id, &request)).await?
    };
    commit_while_empty(&state.broker, group_id, commits).await
}

/// Commits `commits` for a group with no members (the coordinator refuses
/// them, as UnknownMemberId, if a member joined since the caller checked),
/// and answers with every offset the group has committed.
async fn commit_while_empty(broker: &Broker, group_id: String, commits: Vec<OffsetCommit>) -> Result<Json<ResetResult>, ApiError> {
    let results = broker
        .groups()
        .commit_offsets(&group_id, None, commits)
        .await
        .map_err(|error| match error {
            conveyor_core::group::GroupError::UnknownMemberId => ApiError::conflict(format!(
                "group {group_id:?} has members: stop its consumers before changing its offsets"
            )),
            other => ApiError::from(other),
        })?;
    if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
        return Err(ApiError::from(error));
    }
    Ok(Json(ResetResult {
        offsets: committed_offsets(broker, &group_id),
        group_id,
    }))
}

/// The commits a reset makes. Blocking (time lookups read indexes).
fn reset_commits(broker: &Broker, group_id: &str, request: &ResetOffsets) -> Result<Vec<OffsetCommit>, ApiError> {
    let group = empty_group(broker, group_id)?;
    let partitions: Vec<(String, u32)> = match &request.topic {
        Some(topic) => {
            let found = topics::find(broker, topic)?;
            (0..found.partition_count()).map(|partition| (topic.clone(), partition)).collect()
        }
        None => {
            if group.state == GroupState::Dead {
                return Err(ApiError::not_found(format!(
                    "group {group_id:?} does not exist; name a topic to reset (and create) its offsets"
                )));
            }
            broker
                .groups()
                .offsets()
                .of_group(group_id)
                .into_iter()
                .map(|(topic, partition, _)| (topic, partition))
                .collect()
        }
    };
    let mut commits = Vec::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        // Offsets of topics deleted since they were committed are left alone.
        let Some(log) = broker.topic(&topic).and_then(|found| found.partition(partition)) else {
            continue;
        };
        let (start, end) = (log.start_offset(), log.high_watermark());
        let offset = match request.to {
            ResetTarget::Earliest => start,
            ResetTarget::Latest => end,
            ResetTarget::Offset => {
                let offset = request
                    .offset
                    .ok_or_else(|| ApiError::bad_request("\"to\": \"offset\" needs \"offset\""))?;
                offset.clamp(start as i64, end as i64) as u64
            }
            ResetTarget::Timestamp => {
                let timestamp_ms = request
                    .timestamp_ms
                    .ok_or_else(|| ApiError::bad_request("\"to\": \"timestamp\" needs \"timestamp_ms\""))?;
                log.offset_for_timestamp(timestamp_ms)
                    .map_err(|error| ApiError::from(conveyor_core::CoreError::from(error)))?
                    .map_or(end, |(offset, _)| offset)
            }
        };
        commits.push(OffsetCommit {
            topic,
            partition,
            offset: offset as i64,
            leader_epoch: -1,
            metadata: None,
        });
    }
    Ok(commits)
}

/// The group's description, or 409 while it has members: offsets a
/// running consumer commits would overwrite any set from outside. A share
/// group's id is 404: a share group has no committed offsets, by the
/// core's rule for OffsetCommit (Kafka's GROUP_ID_NOT_FOUND).
fn empty_group(broker: &Broker, group_id: &str) -> Result<GroupDescription, ApiError> {
    broker.check_offsets_group(group_id).map_err(|_| {
        ApiError::not_found(format!(
            "group {group_id:?} is a share group, not a consumer group: it has no committed offsets to change"
        ))
    })?;
    let group = broker.groups().describe(group_id);
    if !group.members.is_empty() {
        return Err(ApiError::conflict(format!(
            "group {group_id:?} has {} members (state {}): offsets can only be changed while it is empty",
            group.members.len(),
            group.state.name()
        )));
    }
    Ok(group)
}

/// Commits the given offsets for a group with no members (creating the
/// group), as a consumer outside the group protocol (`conveyor consume
/// --group`) records its progress.
#[utoipa::path(post, operation_id = "commit_group_offsets", path = "/groups/{group_id}/offsets", tag = "groups",
    params(("group_id" = String, Path, description = "consumer group id")),
    request_body = CommitOffsets,
    responses(
        (status = 200, body = ResetResult),
        (status = 400, description = "an empty group id, no offsets or too many, or malformed JSON", body = ErrorBody),
        (status = 404, description = "unknown topic or partition, or a share group's id", body = ErrorBody),
        (status = 409, description = "the group has members", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn commit_offsets(
    State(state): State<Arc<HttpState>>,
    ApiPath(group_id): ApiPath<String>,
    ApiJson(request): ApiJson<CommitOffsets>,
) -> Result<Json<ResetResult>, ApiError> {
    if group_id.is_empty() {
        return Err(ApiError::bad_request("the group id is empty"));
    }
    if request.offsets.is_empty() || request.offsets.len() > COMMIT_OFFSETS_MAX {
        return Err(ApiError::bad_request(format!(
            "{} offsets: commit between 1 and {COMMIT_OFFSETS_MAX}",
            request.offsets.len()
        )));
    }
    let broker = &state.broker;
    empty_group(broker, &group_id)?;
    let mut commits = Vec::with_capacity(request.offsets.len());
    for offset in request.offsets {
        topics::find(broker, &offset.topic)?
            .partition(offset.partition)
            .ok_or_else(|| ApiError::not_found(format!("topic {:?} has no partition {}", offset.topic, offset.partition)))?;
        if offset.offset < 0 {
            return Err(ApiError::bad_request(format!("offset {} is negative", offset.offset)));
        }
        commits.push(OffsetCommit {
            topic: offset.topic,
            partition: offset.partition,
            offset: offset.offset,
            leader_epoch: -1,
            metadata: None,
        });
    }
    commit_while_empty(broker, group_id, commits).await
}

/// Deletes a group with no members, and its committed offsets (its configs
/// stay, as Kafka keeps them, KIP-1142);
/// a share group's id deletes the share group (409 while it has members).
#[utoipa::path(delete, operation_id = "delete_group", path = "/groups/{group_id}", tag = "groups",
    params(("group_id" = String, Path, description = "consumer group id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the group has members", body = ErrorBody),
    ))]
pub async fn delete(State(state): State<Arc<HttpState>>, ApiPath(group_id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    state.broker.delete_group(&group_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The partitions of a consumer-protocol assignment (Kafka's
/// ConsumerProtocolAssignment: version i16, then an array of topic string +
/// partition int32 array, then user data). `None` when it does not parse;
/// every length is checked against the bytes left, so nothing a client sent
/// can make it allocate more than the assignment holds.
fn decode_assignment(bytes: &[u8]) -> Option<Vec<TopicPartitions>> {
    let mut rest = bytes;
    let mut take = |count: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(count)?;
        rest = tail;
        Some(head)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    take(2)?;
    let topic_count = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut assignments = Vec::new();
    for _ in 0..topic_count.max(0) {
        let length = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let topic = String::from_utf8(take(usize::try_from(length).ok()?)?.to_vec()).ok()?;
        let partition_count = i32::from_be_bytes(take(4)?.try_into().ok()?);
        let mut partitions = Vec::new();
        for _ in 0..partition_count.max(0) {
            partitions.push(i32::from_be_bytes(take(4)?.try_into().ok()?));
        }
        assignments.push(TopicPartitions { topic, partitions });
    }
    Some(assignments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_assignment_decodes_and_garbage_does_not() {
        let mut bytes = vec![0, 1, 0, 0, 0, 1, 0, 6];
        bytes.extend_from_slice(b"orders");
        bytes.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        let decoded = decode_assignment(&bytes).expect("decodes");
        assert_eq!(decoded.len(), 1);
        assert_eq!(
            (decoded[0].topic.as_str(), decoded[0].partitions.as_slice()),
            ("orders", &[0, 3][..])
        );
        // A count far beyond the bytes present ends the parse instead of allocating.
        assert!(decode_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_none());
        assert!(decode_assignment(&[0]).is_none());
    }
}
