//! KIP-932 share groups on the wire: ShareGroupHeartbeat (the core's
//! membership; the assignment is every partition of each subscribed
//! topic), ShareGroupDescribe (that membership shown), ShareFetch (acknowledgements, then acquisitions answered with
//! the partition's stored batches and the acquired ranges) and
//! ShareAcknowledge. Delivery rules are the core's share-partitions'.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::share_acknowledge_response::{self, ShareAcknowledgeTopicResponse};
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, NodeEndpoint, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::share_group_describe_response;
use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    BrokerId, GroupId, ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse, ShareGroupDescribeRequest,
    ShareGroupDescribeResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::futures::Notified;
use uuid::Uuid;

use conveyor_core::auth::{Operation, Resource};
use conveyor_core::group_config::GroupSettings;
use conveyor_core::queue::ConsumerId;
use conveyor_core::share_group::{AcknowledgeType, AcquiredRange, Heartbeat, MembershipError, SharePartition};

use crate::Context;
use crate::connection::ConnectionInfo;
use crate::share_session::{CLOSE_EPOCH, ShareSessionError};

/// The node every partition's leader is (Metadata's node id).
const NODE_ID: i32 = 1;
/// Records a ShareFetch takes when the client names no maximum.
const MAX_RECORDS_DEFAULT: usize = 500;
/// KIP-932's GAP acknowledge type: offsets with no record, nothing to settle.
const GAP: i8 = 0;

pub async fn heartbeat(
    context: &Context,
    connection: &ConnectionInfo,
    client_id: String,
    request: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let group = request.group_id.0.to_string();
    let interval_ms = context.broker.group_settings(&group).share_heartbeat_interval_ms;
    let mut response = ShareGroupHeartbeatResponse::default().with_heartbeat_interval_ms(i32::try_from(interval_ms).unwrap_or(i32::MAX));
    if !connection.allowed(context, &Resource::Group(&group), Operation::Read) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let heartbeat = Heartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        subscribed_topics: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|name| name.0.to_string()).collect()),
        client_id,
        client_host: format!("/{}", connection.peer.ip()),
    };
    match context.broker.share_group_heartbeat(&group, heartbeat).await {
        Ok(reply) => {
            response.member_id = Some(StrBytes::from_string(reply.member_id));
            response.member_epoch = reply.member_epoch;
            if reply.member_epoch >= 0 {
                let topic_partitions = assigned_partitions(context, connection, &reply.assigned_topics)
                    .into_iter()
                    .map(|(topic_id, _, partitions)| TopicPartitions::default().with_topic_id(topic_id).with_partitions(partitions))
                    .collect();
                response.assignment = Some(Assignment::default().with_topic_partitions(topic_partitions));
            }
        }
        Err(error) => {
            response.error_code = membership_error(&error).code();
            response.error_message = Some(StrBytes::from_string(error.to_string()));
        }
    }
    response
}

fn session_error(error: ShareSessionError) -> ResponseError {
    match error {
        ShareSessionError::NotFound => ResponseError::ShareSessionNotFound,
        ShareSessionError::InvalidEpoch => ResponseError::InvalidShareSessionEpoch,
    }
}

pub(super) fn membership_error(error: &MembershipError) -> ResponseError {
    match error {
        MembershipError::FencedMemberEpoch { .. } => ResponseError::FencedMemberEpoch,
        MembershipError::UnknownMember { .. } => ResponseError::UnknownMemberId,
        MembershipError::InvalidRequest(_) => ResponseError::InvalidRequest,
        MembershipError::NotShareGroup(_) | MembershipError::GroupNotFound(_) => ResponseError::GroupIdNotFound,
        MembershipError::NonEmptyGroup(_) => ResponseError::NonEmptyGroup,
        MembershipError::Storage(_) => ResponseError::CoordinatorNotAvailable,
    }
}

/// A share group member's assignment: every partition of each subscribed
/// topic that exists and the client may read, as (topic id, name, partitions).
fn assigned_partitions<'a>(
    context: &Context,
    connection: &ConnectionInfo,
    topics: impl IntoIterator<Item = &'a String>,
) -> Vec<(Uuid, String, Vec<i32>)> {
    topics
        .into_iter()
        .filter(|name| connection.allowed(context, &Resource::Topic(name), Operation::Read))
        .filter_map(|name| context.broker.topic(name))
        .map(|topic| {
            let partitions = (0..topic.partition_count()).filter_map(|index| i32::try_from(index).ok()).collect();
            (topic.id, topic.name.clone(), partitions)
        })
        .collect()
}

/// Kafka's share group assignor, the one this broker's assignment follows
/// (every member gets every partition of its subscribed topics).
const SHARE_ASSIGNOR_NAME: &str = "simple";

/// ShareGroupDescribe: each share group's state, epoch and members with
/// their subscriptions and assignments. An id of another kind of group, or
/// of none, is GROUP_ID_NOT_FOUND with Kafka's message.
pub fn describe(context: &Context, connection: &ConnectionInfo, request: ShareGroupDescribeRequest) -> ShareGroupDescribeResponse {
    let groups = request
        .group_ids
        .into_iter()
        .map(|group_id| {
            let failed = |code: i16, message: Option<String>| {
                share_group_describe_response::DescribedGroup::default()
                    .with_group_id(group_id.clone())
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
                    .with_authorized_operations(super::AUTHORIZED_OPERATIONS_OMITTED)
            };
            if !connection.allowed(context, &Resource::Group(&group_id), Operation::Describe) {
                return failed(ResponseError::GroupAuthorizationFailed.code(), None);
            }
            let group = match context.broker.share_group(&group_id) {
                Ok(group) => group,
                Err(error) => return failed(membership_error(&error).code(), Some(error.to_string())),
            };
            let members = group
                .members
                .values()
                .map(|member| {
                    let topic_partitions = assigned_partitions(context, connection, &member.subscribed_topics)
                        .into_iter()
                        .map(|(topic_id, name, partitions)| {
                            share_group_describe_response::TopicPartitions::default()
                                .with_topic_id(topic_id)
                                .with_topic_name(TopicName(StrBytes::from_string(name)))
                                .with_partitions(partitions)
                        })
                        .collect();
                    share_group_describe_response::Member::default()
                        .with_member_id(StrBytes::from_string(member.member_id.clone()))
                        .with_member_epoch(member.member_epoch)
                        .with_client_id(StrBytes::from_string(member.client_id.clone()))
                        .with_client_host(StrBytes::from_string(member.client_host.clone()))
                        .with_subscribed_topic_names(
                            member
                                .subscribed_topics
                                .iter()
                                .map(|name| TopicName(StrBytes::from_string(name.clone())))
                                .collect(),
                        )
                        .with_assignment(share_group_describe_response::Assignment::default().with_topic_partitions(topic_partitions))
                })
                .collect();
            let authorized_operations = if request.include_authorized_operations {
                super::authorized_operations(context, connection, &Resource::Group(&group_id), &super::GROUP_OPERATIONS)
            } else {
                super::AUTHORIZED_OPERATIONS_OMITTED
            };
            share_group_describe_response::DescribedGroup::default()
                .with_group_id(group_id.clone())
                .with_group_state(StrBytes::from_static_str(group.state()))
                .with_group_epoch(group.group_epoch)
                // Assignment never waits in a share group: the target is computed at every epoch.
                .with_assignment_epoch(group.group_epoch)
                .with_assignor_name(StrBytes::from_static_str(SHARE_ASSIGNOR_NAME))
                .with_members(members)
                .with_authorized_operations(authorized_operations)
        })
        .collect();
    ShareGroupDescribeResponse::default().with_groups(groups)
}

/// The share-partition a request names, if the topic exists and may be
/// read (opened on a blocking thread the first time), and its log.
async fn share_partition(
    context: &Context,
    connection: &ConnectionInfo,
    group: &str,
    topic_id: Uuid,
    index: i32,
) -> Result<(Arc<SharePartition>, conveyor_log::Log), ResponseError> {
    let topic = context.broker.topic_by_id(topic_id).ok_or(ResponseError::UnknownTopicId)?;
    if !connection.allowed(context, &Resource::Topic(&topic.name), Operation::Read) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    let index = u32::try_from(index).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
    let log = topic.partition(index).ok_or(ResponseError::UnknownTopicOrPartition)?;
    let coordinator = Arc::clone(context.broker.share_groups());
    let group = group.to_owned();
    let start = context.broker.group_settings(&group).share_auto_offset_reset;
    let opened = tokio::task::spawn_blocking(move || coordinator.share_partition(&group, &topic, index, start)).await;
    match opened {
        Ok(Ok(Some(partition))) => Ok((partition, log)),
        Ok(Ok(None)) => Err(ResponseError::UnknownTopicOrPartition),
        Ok(Err(_)) | Err(_) => Err(ResponseError::KafkaStorageError),
    }
}

/// Settles acknowledgement batches: one type for a whole range, or one per
/// offset. Answers once the settlements are journaled, as Kafka answers
/// once the share-group state is written: an accepted record is never
/// delivered again, even after a crash.
async fn acknowledge(partition: &SharePartition, member: ConsumerId, batches: &AckBatches) -> Result<(), ResponseError> {
    let mut outcome = Ok(());
    // Journal appends complete in order: the last settlement covers the others.
    let mut durable = None;
    for (first_offset, last_offset, types) in batches {
        let (Ok(first), Ok(last)) = (u64::try_from(*first_offset), u64::try_from(*last_offset)) else {
            outcome = Err(ResponseError::InvalidRequest);
            continue;
        };
        for offset in first..=last.min(first.saturating_add(100_000)) {
            let index = usize::try_from(offset - first).unwrap_or(usize::MAX);
            let kind = if types.len() == 1 {
                types[0]
            } else {
                types.get(index).copied().unwrap_or(GAP)
            };
            let kind = match kind {
                GAP => continue,
                1 => AcknowledgeType::Accept,
                2 => AcknowledgeType::Release,
                3 => AcknowledgeType::Reject,
                _ => {
                    outcome = Err(ResponseError::InvalidRequest);
                    continue;
                }
            };
            match partition.acknowledge(member, offset, offset, kind) {
                Ok(Some(settled)) => durable = Some(settled),
                Ok(None) => {}
                Err(_) => outcome = Err(ResponseError::InvalidRecordState),
            }
        }
    }
    if let Some(durable) = durable
        && durable.await.is_err()
    {
        return Err(ResponseError::KafkaStorageError);
    }
    outcome
}

/// One partition's acknowledgement batches: first offset, last offset, types.
type AckBatches = Vec<(i64, i64, Vec<i8>)>;
/// A share-partition and its log, or why it could not be had.
type Target = Result<(Arc<SharePartition>, conveyor_log::Log), ResponseError>;

/// What one partition of a ShareFetch got.
struct Fetched {
    records: Bytes,
    acquired: Vec<AcquiredRange>,
}

/// Acquires up to `max_records` of `partition` for `member` under the
/// group's settings (isolation level, record lock duration, delivery count
/// limit, in-flight window) and reads the stored batches that hold them (up
/// to `max_bytes`); acquired records the read did not reach are given back.
/// Blocking.
fn acquire(
    partition: &SharePartition,
    log: &conveyor_log::Log,
    member: ConsumerId,
    limits: (usize, usize),
    settings: &GroupSettings,
) -> Result<Fetched, ResponseError> {
    let (max_records, max_bytes) = limits;
    let (isolation, lock_ms) = (settings.share_isolation_level, settings.share_record_lock_duration_ms);
    partition.set_limits(
        u32::try_from(settings.share_delivery_count_limit).unwrap_or(u32::MAX),
        u64::try_from(settings.share_partition_max_record_locks).unwrap_or(1),
    );
    partition.expire_locks();
    let (ranges, _durable) = partition.acquire(member, max_records, isolation, lock_ms);
    let Some(first) = ranges.first().map(|range| range.first_offset) else {
        return Ok(Fetched {
            records: Bytes::new(),
            acquired: Vec::new(),
        });
    };
    let read = log.read(first, max_bytes, true).map_err(|_| ResponseError::KafkaStorageError)?;
    let read_end = conveyor_log::batch::whole_batches(&read.bytes)
        .map(|(header, _)| header.last_offset())
        .max()
        .and_then(|last| u64::try_from(last).ok())
        .unwrap_or(first);
    let mut acquired = Vec::new();
    let mut beyond = Vec::new();
    for range in ranges {
        if range.first_offset > read_end {
            beyond.extend(range.first_offset..=range.last_offset);
        } else if range.last_offset > read_end {
            beyond.extend(read_end + 1..=range.last_offset);
            acquired.push(AcquiredRange {
                last_offset: read_end,
                ..range
            });
        } else {
            acquired.push(range);
        }
    }
    if !beyond.is_empty() {
        partition.give_back(member, beyond).map_err(|_| ResponseError::KafkaStorageError)?;
    }
    Ok(Fetched {
        records: read.bytes,
        acquired,
    })
}

/// The group and member a ShareFetch or ShareAcknowledge names, once the
/// connection may READ the group: INVALID_REQUEST without them,
/// GROUP_AUTHORIZATION_FAILED without the right.
fn member_of(
    context: &Context,
    connection: &ConnectionInfo,
    group: Option<&GroupId>,
    member_id: Option<&StrBytes>,
) -> Result<(String, String), ResponseError> {
    let (Some(group), Some(member_id)) = (group.map(|group| group.0.to_string()), member_id.map(ToString::to_string)) else {
        return Err(ResponseError::InvalidRequest);
    };
    if !connection.allowed(context, &Resource::Group(&group), Operation::Read) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    Ok((group, member_id))
}

pub async fn fetch(context: &Arc<Context>, connection: &ConnectionInfo, request: ShareFetchRequest) -> ShareFetchResponse {
    let mut response = ShareFetchResponse::default();
    let (group, member_id) = match member_of(context, connection, request.group_id.as_ref(), request.member_id.as_ref()) {
        Ok(named) => named,
        Err(code) => {
            response.error_code = code.code();
            return response;
        }
    };
    let settings = context.broker.group_settings(&group);
    let lock_ms = settings.share_record_lock_duration_ms;
    response.acquisition_lock_timeout_ms = i32::try_from(lock_ms).unwrap_or(i32::MAX);
    let coordinator = context.broker.share_groups();
    let epoch = request.share_session_epoch;
    // Acknowledgements are taken from whoever holds the records (a member
    // closing may have left the group already); acquiring takes a member.
    if epoch != CLOSE_EPOCH && !coordinator.is_member(&group, &member_id) {
        response.error_code = ResponseError::UnknownMemberId.code();
        return response;
    }
    let member = coordinator.consumer(&member_id);
    // Acknowledgements first, on the partitions that carry them.
    let mut partitions: BTreeMap<(Uuid, i32), PartitionData> = BTreeMap::new();
    let acks: Vec<(Uuid, i32, AckBatches)> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| {
                let batches = partition
                    .acknowledgement_batches
                    .iter()
                    .map(|batch| (batch.first_offset, batch.last_offset, batch.acknowledge_types.clone()))
                    .collect();
                (topic.topic_id, partition.partition_index, batches)
            })
        })
        .collect();
    let session = context.share_sessions.update(
        &group,
        &member_id,
        epoch,
        acks.iter().map(|(topic_id, index, _)| (*topic_id, *index)),
        request
            .forgotten_topics_data
            .iter()
            .flat_map(|topic| topic.partitions.iter().map(|index| (topic.topic_id, *index))),
    );
    // A refused session epoch refuses the whole request, acknowledgements too, as Kafka does.
    let session = match session {
        Ok(session) => session,
        Err(error) => {
            response.error_code = session_error(error).code();
            response.error_message = Some(StrBytes::from_string(error.to_string()));
            return response;
        }
    };
    for (topic_id, index, batches) in acks {
        if batches.is_empty() {
            continue;
        }
        let mut data = PartitionData::default().with_partition_index(index);
        match share_partition(context, connection, &group, topic_id, index).await {
            Ok((partition, _)) => {
                if let Err(error) = acknowledge(&partition, member, &batches).await {
                    data.acknowledge_error_code = error.code();
                }
            }
            Err(error) => data.acknowledge_error_code = error.code(),
        }
        partitions.insert((topic_id, index), data);
    }
    if epoch != CLOSE_EPOCH {
        let max_records = usize::try_from(request.max_records)
            .ok()
            .filter(|max| *max > 0)
            .unwrap_or(MAX_RECORDS_DEFAULT);
        let max_bytes = usize::try_from(request.max_bytes).ok().filter(|max| *max > 0).unwrap_or(1 << 20);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
        let mut targets: Vec<(Uuid, i32, Target)> = Vec::new();
        for (topic_id, index) in &session {
            targets.push((
                *topic_id,
                *index,
                share_partition(context, connection, &group, *topic_id, *index).await,
            ));
        }
        // Bounded: each pass waits for an append, a release, a record lock
        // running out or the request's deadline.
        for _ in 0..10_000 {
            // Interest is registered before the pass looks, so a change
            // between the look and the wait still wakes it.
            let watches: Vec<tokio::sync::watch::Receiver<u64>> = targets
                .iter()
                .filter_map(|(_, _, pair)| pair.as_ref().ok().map(|(_, log)| log.subscribe()))
                .collect();
            let shares: Vec<Arc<SharePartition>> = targets
                .iter()
                .filter_map(|(_, _, pair)| pair.as_ref().ok().map(|(share, _)| Arc::clone(share)))
                .collect();
            let mut released: Vec<Pin<Box<Notified<'_>>>> = shares.iter().map(|share| Box::pin(share.available())).collect();
            for notified in &mut released {
                notified.as_mut().enable();
            }
            let mut remaining = max_records;
            let mut got_any = false;
            for (topic_id, index, pair) in &targets {
                let data = partitions
                    .entry((*topic_id, *index))
                    .or_insert_with(|| PartitionData::default().with_partition_index(*index));
                match pair {
                    Err(error) => data.error_code = error.code(),
                    Ok(_) if remaining == 0 => {}
                    Ok((partition, log)) => {
                        let (partition, log) = (Arc::clone(partition), log.clone());
                        let fetched =
                            tokio::task::spawn_blocking(move || acquire(&partition, &log, member, (remaining, max_bytes), &settings))
                                .await
                                .unwrap_or(Err(ResponseError::UnknownServerError));
                        match fetched {
                            Ok(fetched) if !fetched.acquired.is_empty() => {
                                let count: u64 = fetched
                                    .acquired
                                    .iter()
                                    .map(|range| range.last_offset - range.first_offset + 1)
                                    .sum();
                                remaining = remaining.saturating_sub(usize::try_from(count).unwrap_or(usize::MAX));
                                got_any = true;
                                data.records = Some(fetched.records);
                                data.acquired_records = fetched
                                    .acquired
                                    .iter()
                                    .map(|range| {
                                        AcquiredRecords::default()
                                            .with_first_offset(range.first_offset as i64)
                                            .with_last_offset(range.last_offset as i64)
                                            .with_delivery_count(i16::try_from(range.delivery_count).unwrap_or(i16::MAX))
                                    })
                                    .collect();
                            }
                            Ok(_) => {}
                            Err(error) => data.error_code = error.code(),
                        }
                    }
                }
            }
            if got_any || tokio::time::Instant::now() >= deadline || watches.is_empty() {
                break;
            }
            let wake = match next_lock_deadline(context, &shares) {
                Some(lock_deadline) => deadline.min(lock_deadline),
                None => deadline,
            };
            let _ = tokio::time::timeout_at(wake, async {
                tokio::select! {
                    () = any_changed(watches) => {}
                    () = any_notified(&mut released) => {}
                }
            })
            .await;
        }
    }
    let (host, port) = super::metadata::advertised(context, connection);
    response.node_endpoints = vec![
        NodeEndpoint::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(StrBytes::from_string(host))
            .with_port(port),
    ];
    response.responses = by_topic(partitions.into_iter().map(|((topic_id, _), mut data)| {
        data.current_leader = LeaderIdAndEpoch::default().with_leader_id(NODE_ID).with_leader_epoch(0);
        if data.records.is_none() {
            // librdkafka refuses a null record set.
            data.records = Some(Bytes::new());
        }
        (topic_id, data)
    }))
    .into_iter()
    .map(|(topic_id, partitions)| {
        ShareFetchableTopicResponse::default()
            .with_topic_id(topic_id)
            .with_partitions(partitions)
    })
    .collect();
    response
}

/// Resolves when any of `watches` changes (the others' waits are aborted
/// when the set drops).
/// When the earliest record lock of `shares` runs out (at least a
/// millisecond from now: one due already is the next pass's to expire).
fn next_lock_deadline(context: &Context, shares: &[Arc<SharePartition>]) -> Option<tokio::time::Instant> {
    let deadline_ms = shares.iter().filter_map(|share| share.next_lock_deadline_ms()).min()?;
    let wait_ms = deadline_ms.saturating_sub(context.broker.clock().now_ms()).max(1);
    Some(tokio::time::Instant::now() + Duration::from_millis(u64::try_from(wait_ms).unwrap_or(u64::MAX)))
}

/// Resolves when any share-partition says records may have become
/// available without an append (a release, a member gone).
async fn any_notified(released: &mut [Pin<Box<Notified<'_>>>]) {
    if released.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|context| {
        for notified in released.iter_mut() {
            if notified.as_mut().poll(context).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await;
}

async fn any_changed(watches: Vec<tokio::sync::watch::Receiver<u64>>) {
    let mut waits = tokio::task::JoinSet::new();
    for mut watch in watches {
        waits.spawn(async move {
            let _ = watch.changed().await;
        });
    }
    let _ = waits.join_next().await;
}

fn by_topic<T>(items: impl Iterator<Item = (Uuid, T)>) -> BTreeMap<Uuid, Vec<T>> {
    let mut grouped: BTreeMap<Uuid, Vec<T>> = BTreeMap::new();
    for (topic_id, item) in items {
        grouped.entry(topic_id).or_default().push(item);
    }
    grouped
}

pub async fn acknowledge_request(
    context: &Context,
    connection: &ConnectionInfo,
    request: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let mut response = ShareAcknowledgeResponse::default();
    let (group, member_id) = match member_of(context, connection, request.group_id.as_ref(), request.member_id.as_ref()) {
        Ok(named) => named,
        Err(code) => {
            response.error_code = code.code();
            return response;
        }
    };
    // Taken from whoever holds the records: a closing member may have left
    // the group already (its records were released then, so its late
    // acknowledgements fail with INVALID_RECORD_STATE).
    if let Err(error) = context.share_sessions.acknowledge(&group, &member_id, request.share_session_epoch) {
        response.error_code = session_error(error).code();
        response.error_message = Some(StrBytes::from_string(error.to_string()));
        return response;
    }
    let member = context.broker.share_groups().consumer(&member_id);
    let mut results = Vec::new();
    for topic in &request.topics {
        for partition in &topic.partitions {
            let batches: AckBatches = partition
                .acknowledgement_batches
                .iter()
                .map(|batch| (batch.first_offset, batch.last_offset, batch.acknowledge_types.clone()))
                .collect();
            let mut data = share_acknowledge_response::PartitionData::default().with_partition_index(partition.partition_index);
            data.current_leader = share_acknowledge_response::LeaderIdAndEpoch::default()
                .with_leader_id(NODE_ID)
                .with_leader_epoch(0);
            let outcome = match share_partition(context, connection, &group, topic.topic_id, partition.partition_index).await {
                Ok((share, _)) => acknowledge(&share, member, &batches).await,
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                data.error_code = error.code();
            }
            results.push((topic.topic_id, data));
        }
    }
    response.responses = by_topic(results.into_iter())
        .into_iter()
        .map(|(topic_id, partitions)| {
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(topic_id)
                .with_partitions(partitions)
        })
        .collect();
    response
}
