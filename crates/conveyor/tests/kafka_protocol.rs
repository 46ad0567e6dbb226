//! Kafka protocol behaviour that client libraries hide (their retries), tested
//! with exact requests against a real `conveyor serve`.

mod support;

use bytes::Bytes;
use conveyor_kafka::client::Client;
use conveyor_log::record::{BatchBuilder, Record};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, CreateTopicsRequest, DeleteRecordsRequest, DescribeGroupsRequest, FetchRequest, GroupId,
    InitProducerIdRequest, ListGroupsRequest, ListOffsetsRequest, OffsetCommitRequest, ProduceRequest, ProduceResponse,
    ShareAcknowledgeRequest, ShareFetchRequest, ShareGroupDescribeRequest, ShareGroupHeartbeatRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use support::Server;

const PRODUCE_VERSION: i16 = 9;

fn batch(producer_id: i64, sequence: i32, values: &[&str]) -> Bytes {
    let mut builder = BatchBuilder::new(1_700_000_000_000).producer(producer_id, 0, sequence);
    for value in values {
        builder.push(Record::new(None, Some(value.as_bytes().to_vec())));
    }
    builder.build()
}

fn produce(records: Bytes) -> ProduceRequest {
    produce_to("idempotence", records)
}

fn produce_to(topic: &'static str, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(topic)))
                .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))]),
        ])
}

fn outcome(response: &ProduceResponse) -> (i16, i64) {
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_batch_resent_after_a_restart_is_not_written_twice_and_a_gap_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = format!("127.0.0.1:{}", support::free_port());
    let mut server = Server::start_with(dir.path(), &["--kafka-addr", &kafka], &[]);
    let mut client = Client::connect(&kafka).await.expect("connect");
    let idempotent = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let init = client.send(&idempotent, 4).await.expect("init");
    assert_eq!(init.error_code, 0);
    let producer_id = init.producer_id.0;
    assert!(producer_id >= 0);
    let first = client
        .send(&produce(batch(producer_id, 0, &["a", "b", "c"])), PRODUCE_VERSION)
        .await
        .expect("produce");
    assert_eq!(outcome(&first), (0, 0));
    let second = client
        .send(&produce(batch(producer_id, 3, &["d"])), PRODUCE_VERSION)
        .await
        .expect("produce");
    assert_eq!(outcome(&second), (0, 3));
    drop(client);

    // The broker restarts; the producer state is rebuilt from the log.
    assert!(server.terminate().0.success());
    let _server = Server::start_with(dir.path(), &["--kafka-addr", &kafka], &[]);
    let mut client = Client::connect(&kafka).await.expect("reconnect");
    let retry = client
        .send(&produce(batch(producer_id, 0, &["a", "b", "c"])), PRODUCE_VERSION)
        .await
        .expect("retry");
    assert_eq!(outcome(&retry), (0, 0), "the retry is answered with the original offset");
    let gap = client
        .send(&produce(batch(producer_id, 9, &["x"])), PRODUCE_VERSION)
        .await
        .expect("gap");
    assert_eq!(
        gap.responses[0].partition_responses[0].error_code,
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    let next = client
        .send(&produce(batch(producer_id, 4, &["e"])), PRODUCE_VERSION)
        .await
        .expect("next");
    assert_eq!(
        outcome(&next),
        (0, 4),
        "nothing was written twice: the next batch lands at offset 4"
    );

    // A new producer id is never one handed out before the restart.
    let init = client.send(&idempotent, 4).await.expect("init");
    assert!(init.producer_id.0 > producer_id);
    // A transactional id keeps its producer id; each InitProducerId bumps its epoch.
    let transactional = InitProducerIdRequest::default()
        .with_transactional_id(Some(kafka_protocol::messages::TransactionalId(StrBytes::from_static_str("tx"))))
        .with_transaction_timeout_ms(60_000);
    let first = client.send(&transactional, 4).await.expect("init transactional");
    let second = client.send(&transactional, 4).await.expect("init transactional again");
    assert_eq!((first.error_code, second.error_code), (0, 0));
    assert_eq!(
        (second.producer_id, second.producer_epoch),
        (first.producer_id, first.producer_epoch + 1)
    );
}

async fn create_topic(client: &mut Client, topic: &str) -> (i16, String) {
    create_topic_with(client, topic, 1).await
}

async fn create_topic_with(client: &mut Client, topic: &str, partitions: i32) -> (i16, String) {
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ]);
    let response = client.send(&request, 5).await.expect("CreateTopics");
    let result = &response.topics[0];
    (
        result.error_code,
        result.error_message.as_ref().map(|text| text.to_string()).unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_and_colliding_topic_names_are_refused_and_a_partition_listed_twice_is_not_truncated() {
    let (_dir, server) = Server::start_in_tempdir();
    let mut client = Client::connect(&server.kafka_addr.to_string()).await.expect("connect");
    let invalid_topic = ResponseError::InvalidTopicException.code();
    for internal in ["__consumer_offsets", "__transaction_state"] {
        let (code, message) = create_topic(&mut client, internal).await;
        assert_eq!(code, invalid_topic, "{internal}: {message}");
    }
    assert_eq!(create_topic(&mut client, "orders.eu").await.0, 0);
    let (code, message) = create_topic(&mut client, "orders_eu").await;
    assert_eq!(code, invalid_topic);
    assert_eq!(message, "Topic 'orders_eu' collides with existing topic: orders.eu");
    assert_eq!(
        create_topic(&mut client, "orders.eu").await.0,
        ResponseError::TopicAlreadyExists.code()
    );

    let mut builder = BatchBuilder::new(1_700_000_000_000);
    for value in ["a", "b", "c"] {
        builder.push(Record::new(None, Some(value.as_bytes().to_vec())));
    }
    let produce = produce_to("orders.eu", builder.build());
    let produced = client.send(&produce, PRODUCE_VERSION).await.expect("produce");
    assert_eq!(outcome(&produced), (0, 0));
    let twice = DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("orders.eu")))
            .with_partitions(vec![
                DeleteRecordsPartition::default().with_partition_index(0).with_offset(1),
                DeleteRecordsPartition::default().with_partition_index(0).with_offset(2),
            ]),
    ]);
    let response = client.send(&twice, 2).await.expect("DeleteRecords");
    let codes: Vec<i16> = response.topics[0].partitions.iter().map(|partition| partition.error_code).collect();
    assert_eq!(codes, vec![ResponseError::InvalidRequest.code(); 2]);
    let once = DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("orders.eu")))
            .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(1)]),
    ]);
    let response = client.send(&once, 2).await.expect("DeleteRecords");
    let partition = &response.topics[0].partitions[0];
    assert_eq!(
        (partition.error_code, partition.low_watermark),
        (0, 1),
        "the refused request truncated nothing; this one moves the start from 0 to 1"
    );
}

/// A batch of `codec` with one record per key, `None` for a keyless record.
fn compressed(codec: conveyor_log::codec::Codec, keys: &[Option<&str>]) -> Bytes {
    let mut builder = BatchBuilder::new(1_700_000_000_000).compression(codec);
    for key in keys {
        builder.push(Record::new(key.map(|key| key.as_bytes().to_vec()), Some(b"value".to_vec())));
    }
    builder.build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_inside_compressed_batches_of_a_compacted_topic_are_refused_with_record_errors() {
    use conveyor_log::codec::Codec;
    let (_dir, server) = Server::start_in_tempdir();
    let mut client = Client::connect(&server.kafka_addr.to_string()).await.expect("connect");
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("compacted")))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![
                CreatableTopicConfig::default()
                    .with_name(text("cleanup.policy"))
                    .with_value(Some(text("compact"))),
            ]),
    ]);
    let created = client.send(&request, 5).await.expect("CreateTopics");
    assert_eq!(created.topics[0].error_code, 0);
    let blame = "Compacted topic cannot accept message without key in topic partition compacted-0";
    for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
        let records = compressed(codec, &[Some("a"), None, Some("b"), None]);
        let response = client
            .send(&produce_to("compacted", records), PRODUCE_VERSION)
            .await
            .expect("produce");
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, ResponseError::InvalidRecord.code(), "{codec:?}");
        let blamed: Vec<(i32, String)> = partition
            .record_errors
            .iter()
            .map(|error| {
                let text = error.batch_index_error_message.as_ref().map(|text| text.to_string());
                (error.batch_index, text.unwrap_or_default())
            })
            .collect();
        assert_eq!(blamed, vec![(1, blame.to_owned()), (3, blame.to_owned())], "{codec:?}");
        let message = partition.error_message.as_ref().map(|text| text.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("One or more records have been rejected due to 2 record errors in total")
                && message.contains(&format!("RecordError(batchIndex=3, message='{blame}')")),
            "{codec:?}: {message}"
        );
    }
    // A plain batch relabelled lz4 (CRC recomputed): its records area is not an LZ4 frame.
    let mut corrupt = compressed(Codec::None, &[Some("a")]).to_vec();
    let attributes = i16::from_be_bytes([corrupt[21], corrupt[22]]) | Codec::Lz4.id();
    corrupt[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = conveyor_log::batch::compute_crc(&corrupt);
    corrupt[17..21].copy_from_slice(&crc.to_be_bytes());
    let response = client
        .send(&produce_to("compacted", Bytes::from(corrupt)), PRODUCE_VERSION)
        .await
        .expect("produce on the same connection");
    assert_eq!(outcome(&response).0, ResponseError::CorruptMessage.code());
    // Nothing of the refused batches was written: a keyed one lands at offset 0.
    let keyed = client
        .send(&produce_to("compacted", compressed(Codec::Zstd, &[Some("a")])), PRODUCE_VERSION)
        .await
        .expect("produce on the same connection");
    assert_eq!(outcome(&keyed), (0, 0));
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// (group id, protocol type, group type) of each group ListGroups v5 lists
/// with this types filter.
async fn listed_groups(client: &mut Client, types: &[&str]) -> Vec<(String, String, String)> {
    let request = ListGroupsRequest::default().with_types_filter(types.iter().map(|kind| text(kind)).collect());
    let response = client.send(&request, 5).await.expect("ListGroups");
    assert_eq!(response.error_code, 0);
    let mut groups: Vec<(String, String, String)> = response
        .groups
        .iter()
        .map(|group| {
            (
                group.group_id.to_string(),
                group.protocol_type.to_string(),
                group.group_type.to_string(),
            )
        })
        .collect();
    groups.sort();
    groups
}

// No client library has an admin call for ShareGroupDescribe yet (librdkafka
// 2.16 and kafka-python 3.0 do not), so it is tested with exact requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_group_describe_shows_members_and_assignments_and_list_groups_filters_share_groups_by_type() {
    let (_dir, server) = Server::start_in_tempdir();
    let mut client = Client::connect(&server.kafka_addr.to_string()).await.expect("connect");
    assert_eq!(create_topic_with(&mut client, "jobs", 2).await.0, 0);
    let member_id = "0d0a6b3c-7f3e-4a55-9f0e-5a7d0c2e1b11";
    let join = ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(text("workers")))
        .with_member_id(text(member_id))
        .with_member_epoch(0)
        .with_subscribed_topic_names(Some(vec![TopicName(text("jobs"))]));
    let joined = client.send(&join, 1).await.expect("ShareGroupHeartbeat");
    assert_eq!((joined.error_code, joined.member_epoch), (0, 1));
    // A simple group (committed offsets, no members) of the classic protocol.
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(text("plain")))
        .with_generation_id_or_member_epoch(-1)
        .with_retention_time_ms(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(text("jobs")))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(0),
                ]),
        ]);
    let committed = client.send(&commit, 2).await.expect("OffsetCommit");
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);

    let describe = ShareGroupDescribeRequest::default().with_group_ids(vec![
        GroupId(text("workers")),
        GroupId(text("plain")),
        GroupId(text("nobody")),
    ]);
    let described = client.send(&describe, 1).await.expect("ShareGroupDescribe");
    let workers = &described.groups[0];
    assert_eq!(workers.error_code, 0, "{:?}", workers.error_message);
    assert_eq!(
        (
            workers.group_state.as_str(),
            workers.group_epoch,
            workers.assignment_epoch,
            workers.assignor_name.as_str()
        ),
        ("Stable", 1, 1, "simple")
    );
    assert_eq!(workers.members.len(), 1);
    let member = &workers.members[0];
    assert_eq!(
        (
            member.member_id.as_str(),
            member.member_epoch,
            member.client_id.as_str(),
            member.client_host.as_str()
        ),
        (member_id, 1, "conveyor-client", "/127.0.0.1")
    );
    assert_eq!(member.subscribed_topic_names, vec![TopicName(text("jobs"))]);
    let assigned: Vec<(String, Vec<i32>)> = member
        .assignment
        .topic_partitions
        .iter()
        .map(|topic| (topic.topic_name.to_string(), topic.partitions.clone()))
        .collect();
    assert_eq!(
        assigned,
        vec![("jobs".to_owned(), vec![0, 1])],
        "a share member is assigned every partition"
    );
    let refused: Vec<(i16, String)> = described.groups[1..]
        .iter()
        .map(|group| {
            (
                group.error_code,
                group.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let not_found = ResponseError::GroupIdNotFound.code();
    assert_eq!(
        refused,
        vec![
            (not_found, "Group plain is not a share group.".to_owned()),
            (not_found, "Group nobody not found.".to_owned()),
        ]
    );

    let share = ("workers".to_owned(), "share".to_owned(), "share".to_owned());
    // A simple group has no protocol type, as in Kafka.
    let classic = ("plain".to_owned(), String::new(), "classic".to_owned());
    assert_eq!(listed_groups(&mut client, &["share"]).await, vec![share.clone()]);
    assert_eq!(listed_groups(&mut client, &["classic"]).await, vec![classic.clone()]);
    assert_eq!(listed_groups(&mut client, &[]).await, vec![classic, share]);

    // After the member leaves, the group is still there, Empty, at a new epoch.
    let leave = join.with_member_epoch(-1).with_subscribed_topic_names(None);
    assert_eq!(client.send(&leave, 1).await.expect("leave").member_epoch, -1);
    let described = client.send(&describe, 1).await.expect("ShareGroupDescribe");
    let workers = &described.groups[0];
    assert_eq!(
        (
            workers.error_code,
            workers.group_state.as_str(),
            workers.group_epoch,
            workers.members.len()
        ),
        (0, "Empty", 2, 0)
    );
}

// librdkafka follows the session epochs, so only exact requests can break them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_session_epochs_are_checked_as_kip_932_says() {
    let (_dir, server) = Server::start_in_tempdir();
    let mut client = Client::connect(&server.kafka_addr.to_string()).await.expect("connect");
    assert_eq!(create_topic(&mut client, "tasks").await.0, 0);
    let member_id = "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    let join = ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(text("crew")))
        .with_member_id(text(member_id))
        .with_member_epoch(0)
        .with_subscribed_topic_names(Some(vec![TopicName(text("tasks"))]));
    assert_eq!(client.send(&join, 1).await.expect("ShareGroupHeartbeat").error_code, 0);
    let fetch = |epoch: i32| {
        ShareFetchRequest::default()
            .with_group_id(Some(GroupId(text("crew"))))
            .with_member_id(Some(text(member_id)))
            .with_share_session_epoch(epoch)
            .with_max_bytes(1 << 20)
            .with_max_records(10)
            .with_batch_size(10)
    };
    let acknowledge = |epoch: i32| {
        ShareAcknowledgeRequest::default()
            .with_group_id(Some(GroupId(text("crew"))))
            .with_member_id(Some(text(member_id)))
            .with_share_session_epoch(epoch)
    };
    let not_found = ResponseError::ShareSessionNotFound.code();
    let invalid = ResponseError::InvalidShareSessionEpoch.code();
    let mut codes = Vec::new();
    for epoch in [1, 0, 1, 1, 3, 2] {
        codes.push(client.send(&fetch(epoch), 1).await.expect("ShareFetch").error_code);
    }
    assert_eq!(
        codes,
        vec![not_found, 0, 0, invalid, invalid, 0],
        "fetches at epochs 1, 0, 1, 1, 3, 2"
    );
    let mut codes = Vec::new();
    for epoch in [0, 4, 3, -1, -1, 4] {
        codes.push(client.send(&acknowledge(epoch), 1).await.expect("ShareAcknowledge").error_code);
    }
    assert_eq!(
        codes,
        vec![invalid, invalid, 0, 0, not_found, not_found],
        "acknowledgements at epochs 0, 4, 3, -1 (closes), -1, 4"
    );
    let mut codes = Vec::new();
    for epoch in [-1, 0, -1] {
        codes.push(client.send(&fetch(epoch), 1).await.expect("ShareFetch").error_code);
    }
    assert_eq!(
        codes,
        vec![not_found, 0, 0],
        "a closed session is gone until epoch 0 opens a new one"
    );
}

fn consumer_join(group: &str, member_id: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_member_id(text(member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(text("jobs"))]))
        .with_topic_partitions(Some(Vec::new()))
}

fn share_join(group: &str) -> ShareGroupHeartbeatRequest {
    ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_member_id(text("5b0f2a8e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"))
        .with_member_epoch(0)
        .with_subscribed_topic_names(Some(vec![TopicName(text("jobs"))]))
}

// Kafka 4.1's answers where the protocols meet: one group id, one kind of
// group (GroupMetadataManager's "Group g is not a share group." and "... not
// a consumer group."); DescribeGroups (v5) shows a KIP-848 group as Dead, as
// it does any group that is not a classic one; ConsumerGroupHeartbeat v1
// needs the client's own member id (KIP-1082).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_and_share_groups_refuse_each_others_ids_and_describe_groups_shows_a_kip848_group_as_dead() {
    let (_dir, server) = Server::start_in_tempdir();
    let mut client = Client::connect(&server.kafka_addr.to_string()).await.expect("connect");
    assert_eq!(create_topic_with(&mut client, "jobs", 2).await.0, 0);

    let anonymous = client.send(&consumer_join("kip848", ""), 1).await.expect("ConsumerGroupHeartbeat");
    assert_eq!(anonymous.error_code, ResponseError::InvalidRequest.code());
    assert_eq!(anonymous.error_message.as_deref(), Some("MemberId can't be empty."));
    let joined = client
        .send(&consumer_join("kip848", "6a1e0c52-3b7d-4f1a-9c2e-7d8f9a0b1c2d"), 1)
        .await
        .expect("ConsumerGroupHeartbeat");
    assert_eq!((joined.error_code, joined.member_epoch), (0, 1));

    let described = client
        .send(&DescribeGroupsRequest::default().with_groups(vec![GroupId(text("kip848"))]), 5)
        .await
        .expect("DescribeGroups");
    let group = &described.groups[0];
    assert_eq!(
        (
            group.error_code,
            group.group_state.as_str(),
            group.protocol_type.as_str(),
            group.members.len()
        ),
        (0, "Dead", "", 0)
    );

    let refused = client.send(&share_join("kip848"), 1).await.expect("ShareGroupHeartbeat");
    assert_eq!(refused.error_code, ResponseError::GroupIdNotFound.code());
    assert_eq!(refused.error_message.as_deref(), Some("Group kip848 is not a share group."));

    let shared = client.send(&share_join("shared"), 1).await.expect("ShareGroupHeartbeat");
    assert_eq!((shared.error_code, shared.member_epoch), (0, 1));
    let refused = client
        .send(&consumer_join("shared", "7b2f1d63-4c8e-4a2b-8d3f-8e9a0b1c2d3e"), 1)
        .await
        .expect("ConsumerGroupHeartbeat");
    assert_eq!(refused.error_code, ResponseError::GroupIdNotFound.code());
    assert_eq!(refused.error_message.as_deref(), Some("Group shared is not a consumer group."));
}

/// librdkafka pipelines its ListOffsets and its Fetch on one connection.
/// Replies go out in request order, but one that is ready must not wait
/// behind a Fetch parked for its `max_wait_ms`: the client would start
/// fetching half a second late, after its assignment may have changed
/// (it then delivered a revoked partition's records a second time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_reply_is_sent_while_a_fetch_pipelined_after_it_is_still_parked() {
    let (_dir, server) = support::Server::start_in_tempdir();
    let mut client = Client::connect(server.kafka_addr).await.expect("connect");
    assert_eq!(create_topic(&mut client, "pipelined").await.0, 0);
    let topic = || TopicName(StrBytes::from_static_str("pipelined"));
    let list = ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(vec![
        ListOffsetsTopic::default()
            .with_name(topic())
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-2)]),
    ]);
    let fetch = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(20_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default().with_topic(topic()).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20),
        ])]);
    let listed_id = client.write(&list, 7).await.expect("write ListOffsets");
    let fetch_id = client.write(&fetch, 11).await.expect("write Fetch");
    let wait = std::time::Duration::from_secs(60);
    let listed = tokio::time::timeout(wait, client.read::<ListOffsetsRequest>(7, listed_id))
        .await
        .expect("ListOffsets answered")
        .expect("ListOffsets");
    assert_eq!(listed.topics[0].partitions[0].offset, 0);

    // The Fetch is still parked: a record produced now is what it returns.
    let mut producer = Client::connect(server.kafka_addr).await.expect("connect");
    let produced = producer
        .send(&produce_to("pipelined", batch(-1, -1, &["after the reply"])), PRODUCE_VERSION)
        .await
        .expect("Produce");
    assert_eq!(outcome(&produced), (0, 0));
    let fetched = tokio::time::timeout(wait, client.read::<FetchRequest>(11, fetch_id))
        .await
        .expect("Fetch answered")
        .expect("Fetch");
    let records = fetched.responses[0].partitions[0].records.clone().unwrap_or_default();
    assert!(
        !records.is_empty(),
        "the Fetch was answered before the record arrived: its reply held back the ListOffsets reply"
    );
}
