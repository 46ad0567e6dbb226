//! Share groups (KIP-932) where they meet the classic group APIs, the
//! share-group offsets admin APIs and the groups' own delivery limits,
//! tested with exact requests against a real `conveyor serve`: no client
//! library exposes Describe/Alter/DeleteShareGroupOffsets (librdkafka 2.16
//! and kafka-python 3.0 do not), and librdkafka hides the rest behind its
//! retries. The answers are Kafka 4.1's (`GroupMetadataManager`,
//! `GroupCoordinatorService`, `KafkaApis`).

mod support;

use conveyor_kafka::client::Client;
use conveyor_log::record::{BatchBuilder, Record};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
use kafka_protocol::messages::describe_share_group_offsets_request::{
    DescribeShareGroupOffsetsRequestGroup, DescribeShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::share_fetch_request::{AcknowledgementBatch, FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, ApiKey, ApiVersionsRequest, ConsumerGroupHeartbeatRequest, CreateTopicsRequest, DeleteGroupsRequest,
    DeleteShareGroupOffsetsRequest, DescribeGroupsRequest, DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, GroupId,
    HeartbeatRequest, IncrementalAlterConfigsRequest, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, ProduceRequest, ShareFetchRequest, ShareFetchResponse, ShareGroupDescribeRequest, ShareGroupHeartbeatRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use support::Server;
use uuid::Uuid;

const MEMBER: &str = "9c1d7e2a-4b5f-4c6d-8e7f-1a2b3c4d5e6f";
const GROUP_ID_NOT_FOUND: i16 = ResponseError::GroupIdNotFound.code();
const NON_EMPTY_GROUP: i16 = ResponseError::NonEmptyGroup.code();
const UNKNOWN_TOPIC_OR_PARTITION: i16 = ResponseError::UnknownTopicOrPartition.code();
/// KIP-932's acknowledge type RELEASE.
const RELEASE: i8 = 2;
/// IncrementalAlterConfigs' resource type GROUP.
const GROUP_RESOURCE: i8 = 32;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn group(value: &str) -> GroupId {
    GroupId(text(value))
}

/// Creates `name` with `partitions` partitions; its topic id.
async fn create_topic(client: &mut Client, name: &str, partitions: i32) -> Uuid {
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(text(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ]);
    let response = client.send(&request, 7).await.expect("CreateTopics");
    assert_eq!(response.topics[0].error_code, 0, "{:?}", response.topics[0].error_message);
    response.topics[0].topic_id
}

/// Appends `count` records to partition 0 of `topic`.
async fn produce(client: &mut Client, topic: &str, count: usize) {
    let mut builder = BatchBuilder::new(1_700_000_000_000);
    for index in 0..count {
        builder.push(Record::new(None, Some(format!("r{index}").into_bytes())));
    }
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(text(topic)))
                .with_partition_data(vec![
                    PartitionProduceData::default().with_index(0).with_records(Some(builder.build())),
                ]),
        ]);
    let response = client.send(&request, 9).await.expect("Produce");
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

/// A ShareGroupHeartbeat of `MEMBER` in `group_id` at `epoch` (0 joins the
/// topic `topic`, -1 leaves); the member epoch it is answered with.
async fn share_heartbeat(client: &mut Client, group_id: &str, topic: &str, epoch: i32) -> i32 {
    let request = ShareGroupHeartbeatRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(text(MEMBER))
        .with_member_epoch(epoch)
        .with_subscribed_topic_names((epoch == 0).then(|| vec![TopicName(text(topic))]));
    let response = client.send(&request, 1).await.expect("ShareGroupHeartbeat");
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    response.member_epoch
}

/// A ShareFetch of `MEMBER` from partition 0 of `topic_id`, with `acks`
/// as (first offset, last offset, type); waits at most 200 ms for records.
async fn share_fetch(client: &mut Client, group_id: &str, topic_id: Uuid, epoch: i32, acks: &[(i64, i64, i8)]) -> ShareFetchResponse {
    let batches = acks
        .iter()
        .map(|(first, last, kind)| {
            AcknowledgementBatch::default()
                .with_first_offset(*first)
                .with_last_offset(*last)
                .with_acknowledge_types(vec![*kind])
        })
        .collect();
    let request = ShareFetchRequest::default()
        .with_group_id(Some(group(group_id)))
        .with_member_id(Some(text(MEMBER)))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(200)
        .with_max_bytes(1 << 20)
        .with_max_records(10)
        .with_batch_size(10)
        .with_topics(vec![FetchTopic::default().with_topic_id(topic_id).with_partitions(
            vec![FetchPartition::default().with_partition_index(0).with_acknowledgement_batches(batches)],
        )]);
    let response = client.send(&request, 1).await.expect("ShareFetch");
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    response
}

/// (first offset, last offset, delivery count) of each range a ShareFetch acquired.
fn acquired(response: &ShareFetchResponse) -> Vec<(i64, i64, i16)> {
    response
        .responses
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .flat_map(|partition| partition.acquired_records.iter())
        .map(|records| (records.first_offset, records.last_offset, records.delivery_count))
        .collect()
}

/// (group id, group type) of every group ListGroups v5 lists.
async fn listed(client: &mut Client) -> Vec<(String, String)> {
    let response = client.send(&ListGroupsRequest::default(), 5).await.expect("ListGroups");
    let mut groups: Vec<(String, String)> = response
        .groups
        .iter()
        .map(|listed| (listed.group_id.to_string(), listed.group_type.to_string()))
        .collect();
    groups.sort();
    groups
}

fn offset_commit(group_id: &str, topic: &str, generation: i32, member_id: &str) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(text(member_id))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(text(topic)))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(3),
                ]),
        ])
}

async fn delete_groups(client: &mut Client, group_id: &str) -> i16 {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group(group_id)]);
    client.send(&request, 2).await.expect("DeleteGroups").results[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_group_apis_on_a_share_groups_id_answer_as_kafka_and_delete_groups_deletes_the_share_group() {
    let (dir, server) = Server::start_in_tempdir();
    let mut client = Client::connect(&server.kafka_addr.to_string()).await.expect("connect");
    let topic_id = create_topic(&mut client, "jobs", 1).await;
    assert_eq!(share_heartbeat(&mut client, "workers", "jobs", 0).await, 1);
    share_fetch(&mut client, "workers", topic_id, 0, &[]).await;

    // SyncGroup, Heartbeat and LeaveGroup: UNKNOWN_MEMBER_ID (classicGroupSync and the others' "else" branch).
    let sync = SyncGroupRequest::default()
        .with_group_id(group("workers"))
        .with_generation_id(1)
        .with_member_id(text(MEMBER))
        .with_protocol_type(Some(text("consumer")))
        .with_protocol_name(Some(text("range")));
    let unknown_member = ResponseError::UnknownMemberId.code();
    assert_eq!(client.send(&sync, 5).await.expect("SyncGroup").error_code, unknown_member);
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group("workers"))
        .with_generation_id(1)
        .with_member_id(text(MEMBER));
    assert_eq!(client.send(&heartbeat, 4).await.expect("Heartbeat").error_code, unknown_member);
    let leave = LeaveGroupRequest::default()
        .with_group_id(group("workers"))
        .with_members(vec![MemberIdentity::default().with_member_id(text(MEMBER))]);
    assert_eq!(client.send(&leave, 5).await.expect("LeaveGroup").error_code, unknown_member);

    // OffsetCommit, from outside the group protocol or as a member: GROUP_ID_NOT_FOUND (ShareGroup.validateOffsetCommit).
    for (generation, member_id) in [(-1, ""), (1, MEMBER)] {
        let committed = client
            .send(&offset_commit("workers", "jobs", generation, member_id), 9)
            .await
            .expect("OffsetCommit");
        assert_eq!(
            committed.topics[0].partitions[0].error_code, GROUP_ID_NOT_FOUND,
            "generation {generation}"
        );
    }
    // OffsetFetch: no offsets, no error (fetchOffsets fails all partitions quietly); OffsetDelete: GROUP_ID_NOT_FOUND.
    let fetch = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(group("workers"))
            .with_topics(Some(vec![
                OffsetFetchRequestTopics::default()
                    .with_name(TopicName(text("jobs")))
                    .with_partition_indexes(vec![0]),
            ])),
    ]);
    let fetched = client.send(&fetch, 9).await.expect("OffsetFetch");
    let partition = &fetched.groups[0].topics[0].partitions[0];
    assert_eq!(
        (fetched.groups[0].error_code, partition.error_code, partition.committed_offset),
        (0, 0, -1)
    );
    let delete_offsets = OffsetDeleteRequest::default().with_group_id(group("workers")).with_topics(vec![
        OffsetDeleteRequestTopic::default()
            .with_name(TopicName(text("jobs")))
            .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
    ]);
    assert_eq!(
        client.send(&delete_offsets, 0).await.expect("OffsetDelete").error_code,
        GROUP_ID_NOT_FOUND
    );
    assert_eq!(
        listed(&mut client).await,
        vec![("workers".to_owned(), "share".to_owned())],
        "still a share group, not a classic one too"
    );

    // DeleteGroups: NON_EMPTY_GROUP while it has a member, then the group and its state go.
    assert_eq!(delete_groups(&mut client, "workers").await, NON_EMPTY_GROUP);
    let state = dir.path().join("share-groups").join("776f726b657273");
    assert!(state.exists(), "the share-partition's state: {}", state.display());
    assert_eq!(share_heartbeat(&mut client, "workers", "jobs", -1).await, -1);
    assert_eq!(delete_groups(&mut client, "workers").await, 0);
    assert!(!state.exists(), "the share group's state is deleted");
    assert_eq!(listed(&mut client).await, Vec::<(String, String)>::new());
    let described = client
        .send(&ShareGroupDescribeRequest::default().with_group_ids(vec![group("workers")]), 1)
        .await
        .expect("ShareGroupDescribe");
    assert_eq!(
        (described.groups[0].error_code, described.groups[0].error_message.as_deref()),
        (GROUP_ID_NOT_FOUND, Some("Group workers not found."))
    );
    assert_eq!(delete_groups(&mut client, "workers").await, GROUP_ID_NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_groups_v6_says_why_a_group_is_not_described() {
    let (_dir, server) = Server::start_in_tempdir();
    let mut client = Client::connect(&server.kafka_addr.to_string()).await.expect("connect");
    create_topic(&mut client, "jobs", 1).await;
    let versions = client.send(&ApiVersionsRequest::default(), 3).await.expect("ApiVersions");
    let advertised = |api: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|range| range.api_key == api as i16)
            .map(|range| (range.min_version, range.max_version))
    };
    assert_eq!(advertised(ApiKey::DescribeGroups), Some((0, 6)));
    for api in [
        ApiKey::DescribeShareGroupOffsets,
        ApiKey::AlterShareGroupOffsets,
        ApiKey::DeleteShareGroupOffsets,
    ] {
        assert_eq!(advertised(api), Some((0, 0)), "{api:?}");
    }
    // A simple classic group, a share group and a KIP-848 group.
    let committed = client.send(&offset_commit("plain", "jobs", -1, ""), 9).await.expect("OffsetCommit");
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    share_heartbeat(&mut client, "workers", "jobs", 0).await;
    let kip848 = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("kip848"))
        .with_member_id(text("4e2f1a3b-5c6d-4e7f-8a9b-0c1d2e3f4a5b"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(text("jobs"))]))
        .with_topic_partitions(Some(Vec::new()));
    assert_eq!(client.send(&kip848, 1).await.expect("ConsumerGroupHeartbeat").error_code, 0);

    let ids = ["plain", "workers", "kip848", "nobody"];
    let request = DescribeGroupsRequest::default().with_groups(ids.iter().map(|id| group(id)).collect());
    let described = |response: kafka_protocol::messages::DescribeGroupsResponse| -> Vec<(i16, String, Option<String>)> {
        response
            .groups
            .iter()
            .map(|described| {
                (
                    described.error_code,
                    described.group_state.to_string(),
                    described.error_message.as_ref().map(ToString::to_string),
                )
            })
            .collect()
    };
    let v6 = described(client.send(&request, 6).await.expect("DescribeGroups v6"));
    let not_found = |message: &str| (GROUP_ID_NOT_FOUND, "Dead".to_owned(), Some(message.to_owned()));
    assert_eq!(
        v6,
        vec![
            (0, "Empty".to_owned(), None),
            not_found("Group workers is not a classic group."),
            not_found("Group kip848 is not a classic group."),
            not_found("Group nobody not found."),
        ]
    );
    let v5 = described(client.send(&request, 5).await.expect("DescribeGroups v5"));
    let dead = (0, "Dead".to_owned(), None);
    assert_eq!(
        v5,
        vec![(0, "Empty".to_owned(), None), dead.clone(), dead.clone(), dead],
        "before v6 every other id is Dead, without an error"
    );
}

/// DescribeShareGroupOffsets for `group_id`: (topic, partition, start
/// offset, error) of each answered partition, and the group's error.
async fn share_offsets(client: &mut Client, group_id: &str, topics: Option<&[(&str, &[i32])]>) -> (i16, Vec<(String, i32, i64, i16)>) {
    let topics = topics.map(|topics| {
        topics
            .iter()
            .map(|(name, partitions)| {
                DescribeShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(TopicName(text(name)))
                    .with_partitions(partitions.to_vec())
            })
            .collect()
    });
    let request = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
        DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(group(group_id))
            .with_topics(topics),
    ]);
    let response: DescribeShareGroupOffsetsResponse = client.send(&request, 0).await.expect("DescribeShareGroupOffsets");
    let answer = &response.groups[0];
    let partitions = answer
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| {
                (
                    topic.topic_name.to_string(),
                    partition.partition_index,
                    partition.start_offset,
                    partition.error_code,
                )
            })
        })
        .collect();
    (answer.error_code, partitions)
}

/// AlterShareGroupOffsets: the top-level error and message, and each partition's error.
async fn alter_offsets(
    client: &mut Client,
    group_id: &str,
    changes: &[(&str, i32, i64)],
) -> (i16, Option<String>, Vec<(String, i32, i16)>) {
    let topics = changes
        .iter()
        .map(|(name, partition, offset)| {
            AlterShareGroupOffsetsRequestTopic::default()
                .with_topic_name(TopicName(text(name)))
                .with_partitions(vec![
                    AlterShareGroupOffsetsRequestPartition::default()
                        .with_partition_index(*partition)
                        .with_start_offset(*offset),
                ])
        })
        .collect();
    let request = AlterShareGroupOffsetsRequest::default()
        .with_group_id(group(group_id))
        .with_topics(topics);
    let response = client.send(&request, 0).await.expect("AlterShareGroupOffsets");
    let partitions = response
        .responses
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|partition| (topic.topic_name.to_string(), partition.partition_index, partition.error_code))
        })
        .collect();
    (
        response.error_code,
        response.error_message.map(|message| message.to_string()),
        partitions,
    )
}

/// DeleteShareGroupOffsets: the top-level error and message, and each topic's error and message.
async fn delete_offsets(client: &mut Client, group_id: &str, topics: &[&str]) -> (i16, Option<String>, Vec<(String, i16, Option<String>)>) {
    let request = DeleteShareGroupOffsetsRequest::default()
        .with_group_id(group(group_id))
        .with_topics(
            topics
                .iter()
                .map(|name| DeleteShareGroupOffsetsRequestTopic::default().with_topic_name(TopicName(text(name))))
                .collect(),
        );
    let response = client.send(&request, 0).await.expect("DeleteShareGroupOffsets");
    let topics = response
        .responses
        .iter()
        .map(|topic| {
            (
                topic.topic_name.to_string(),
                topic.error_code,
                topic.error_message.as_ref().map(ToString::to_string),
            )
        })
        .collect();
    (
        response.error_code,
        response.error_message.map(|message| message.to_string()),
        topics,
    )
}

/// Sets `configs` on group `group_id` with IncrementalAlterConfigs; each
/// change's error code and message.
async fn set_group_configs(client: &mut Client, group_id: &str, configs: &[(&str, &str)]) -> (i16, Option<String>) {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(GROUP_RESOURCE)
            .with_resource_name(text(group_id))
            .with_configs(
                configs
                    .iter()
                    .map(|(name, value)| AlterableConfig::default().with_name(text(name)).with_value(Some(text(value))))
                    .collect(),
            ),
    ]);
    let response = client.send(&request, 1).await.expect("IncrementalAlterConfigs");
    let result = &response.responses[0];
    (result.error_code, result.error_message.as_ref().map(ToString::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_group_offsets_are_described_and_changed_only_while_the_group_is_empty_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let mut client = Client::connect(&server.kafka_addr.to_string()).await.expect("connect");
    let topic_id = create_topic(&mut client, "jobs", 2).await;
    produce(&mut client, "jobs", 6).await;
    assert_eq!(
        set_group_configs(&mut client, "workers", &[("share.auto.offset.reset", "earliest")])
            .await
            .0,
        0
    );
    assert_eq!(share_heartbeat(&mut client, "workers", "jobs", 0).await, 1);
    let fetched = share_fetch(&mut client, "workers", topic_id, 0, &[]).await;
    assert_eq!(acquired(&fetched), vec![(0, 5, 1)]);
    share_fetch(&mut client, "workers", topic_id, 1, &[(0, 1, 1)]).await;

    let jobs = |partition: i32, start: i64, error: i16| ("jobs".to_owned(), partition, start, error);
    assert_eq!(share_offsets(&mut client, "workers", None).await, (0, vec![jobs(0, 2, 0)]));
    let asked: &[(&str, &[i32])] = &[("jobs", &[0, 1, 7]), ("nothing", &[0])];
    assert_eq!(
        share_offsets(&mut client, "workers", Some(asked)).await,
        (
            0,
            vec![jobs(0, 2, 0), jobs(1, -1, 0), jobs(7, -1, 0), ("nothing".to_owned(), 0, -1, 0)]
        ),
        "no state, no partition, no topic: -1, as Kafka answers"
    );

    // Changed only while the group has no members.
    let not_empty = (NON_EMPTY_GROUP, Some("The group is not empty.".to_owned()));
    let altered = alter_offsets(&mut client, "workers", &[("jobs", 0, 4)]).await;
    assert_eq!(((altered.0, altered.1), altered.2.len()), (not_empty.clone(), 0));
    let deleted = delete_offsets(&mut client, "workers", &["jobs"]).await;
    assert_eq!(((deleted.0, deleted.1), deleted.2.len()), (not_empty, 0));
    assert_eq!(share_heartbeat(&mut client, "workers", "jobs", -1).await, -1);
    assert_eq!(
        alter_offsets(&mut client, "workers", &[("jobs", 0, 4), ("jobs", 9, 0), ("nothing", 0, 0)]).await,
        (
            0,
            None,
            vec![
                ("jobs".to_owned(), 0, 0),
                ("jobs".to_owned(), 9, UNKNOWN_TOPIC_OR_PARTITION),
                ("nothing".to_owned(), 0, UNKNOWN_TOPIC_OR_PARTITION)
            ]
        )
    );
    assert_eq!(share_offsets(&mut client, "workers", None).await, (0, vec![jobs(0, 4, 0)]));
    let refused = |group_id: &str, message: &str| (GROUP_ID_NOT_FOUND, Some(format!("Group {group_id} {message}")));
    let altered = alter_offsets(&mut client, "ghost", &[("jobs", 0, 0)]).await;
    assert_eq!(((altered.0, altered.1), altered.2.len()), (refused("ghost", "not found."), 0));
    let committed = client.send(&offset_commit("plain", "jobs", -1, ""), 9).await.expect("OffsetCommit");
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    let deleted = delete_offsets(&mut client, "plain", &["jobs"]).await;
    assert_eq!(
        ((deleted.0, deleted.1), deleted.2.len()),
        (refused("plain", "is not a share group."), 0)
    );

    // The altered start holds: a member that joins gets offset 4 on.
    assert_eq!(share_heartbeat(&mut client, "workers", "jobs", 0).await, 3);
    let fetched = share_fetch(&mut client, "workers", topic_id, 0, &[]).await;
    assert_eq!(acquired(&fetched), vec![(4, 5, 1)]);
    assert_eq!(share_heartbeat(&mut client, "workers", "jobs", -1).await, -1);

    // A restarted broker knows the group (Empty) and its start offsets.
    drop(client);
    let mut server = server;
    assert!(server.terminate().0.success());
    let server = Server::start(dir.path());
    let mut client = Client::connect(&server.kafka_addr.to_string()).await.expect("reconnect");
    assert_eq!(share_offsets(&mut client, "workers", None).await, (0, vec![jobs(0, 4, 0)]));
    assert_eq!(
        listed(&mut client).await,
        vec![
            ("plain".to_owned(), "classic".to_owned()),
            ("workers".to_owned(), "share".to_owned())
        ]
    );
    let no_offsets = Some("There is no offset information to delete.".to_owned());
    let deleted = delete_offsets(&mut client, "workers", &["jobs", "nothing"]).await;
    assert_eq!(
        deleted,
        (
            0,
            None,
            vec![
                ("jobs".to_owned(), 0, None),
                (
                    "nothing".to_owned(),
                    UNKNOWN_TOPIC_OR_PARTITION,
                    Some("This server does not host this topic-partition.".to_owned())
                )
            ]
        )
    );
    assert_eq!(share_offsets(&mut client, "workers", None).await, (0, Vec::new()));
    assert_eq!(
        delete_offsets(&mut client, "workers", &["jobs"]).await,
        (0, None, vec![("jobs".to_owned(), UNKNOWN_TOPIC_OR_PARTITION, no_offsets)])
    );
    // Deleted state starts over at the group's share.auto.offset.reset.
    share_heartbeat(&mut client, "workers", "jobs", 0).await;
    let fetched = share_fetch(&mut client, "workers", topic_id, 0, &[]).await;
    assert_eq!(acquired(&fetched), vec![(0, 5, 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_is_archived_after_the_groups_own_delivery_count_limit() {
    let (_dir, server) = Server::start_in_tempdir();
    let mut client = Client::connect(&server.kafka_addr.to_string()).await.expect("connect");
    let topic_id = create_topic(&mut client, "jobs", 1).await;
    produce(&mut client, "jobs", 1).await;
    assert_eq!(
        set_group_configs(&mut client, "workers", &[("share.delivery.count.limit", "11")]).await,
        (
            ResponseError::InvalidConfig.code(),
            Some("share.delivery.count.limit must be less than or equal to group.share.max.delivery.count.limit".to_owned())
        )
    );
    let limits = [
        ("share.delivery.count.limit", "2"),
        ("share.partition.max.record.locks", "100"),
        ("share.auto.offset.reset", "earliest"),
    ];
    assert_eq!(set_group_configs(&mut client, "workers", &limits).await.0, 0);
    share_heartbeat(&mut client, "workers", "jobs", 0).await;
    let first = share_fetch(&mut client, "workers", topic_id, 0, &[]).await;
    assert_eq!(acquired(&first), vec![(0, 0, 1)]);
    let second = share_fetch(&mut client, "workers", topic_id, 1, &[(0, 0, RELEASE)]).await;
    assert_eq!(acquired(&second), vec![(0, 0, 2)]);
    let third = share_fetch(&mut client, "workers", topic_id, 2, &[(0, 0, RELEASE)]).await;
    assert_eq!(
        acquired(&third),
        Vec::new(),
        "archived instead of a third delivery (Kafka's default would allow 5)"
    );
    assert_eq!(
        share_offsets(&mut client, "workers", None).await,
        (0, vec![("jobs".to_owned(), 0, 1, 0)])
    );
}
