//! The request path against hostile input, over real TCP: arbitrary bytes
//! and mutated real request frames never panic a connection task, never take
//! the broker down, and a fresh client is served normally after each one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use conveyor_core::{Broker, BrokerConfig};
use conveyor_kafka::client::{Client, encode_request};
use conveyor_kafka::{Context, KafkaConfig};
use conveyor_log::record::{BatchBuilder, Record};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, DeleteRecordsRequest, DescribeClusterRequest, DescribeConfigsRequest, FetchRequest,
    IncrementalAlterConfigsRequest, ListOffsetsRequest, MetadataRequest, OffsetForLeaderEpochRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: conveyor_alloc::LazyHugeAllocator = conveyor_alloc::LazyHugeAllocator;

static PANICS: AtomicUsize = AtomicUsize::new(0);

struct Harness {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// One broker for the whole test binary, so cases are cheap.
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = BrokerConfig::new(dir.path());
        config.topic_defaults.log.durability = conveyor_log::Durability::Never;
        let broker = Arc::new(Broker::open(config).expect("broker"));
        let addr = runtime.block_on(async {
            broker.create_topic("target", Some(2), BTreeMap::new()).await.expect("topic");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let context = Arc::new(Context {
                broker,
                config: KafkaConfig {
                    frame_bytes_max: 1024 * 1024,
                    ..KafkaConfig::default()
                },
                share_sessions: Default::default(),
            });
            let (_stop, shutdown) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                let _keep_sender = _stop;
                conveyor_kafka::serve(listener, context, shutdown).await;
            });
            addr
        });
        Harness { runtime, addr, _dir: dir }
    })
}

/// Sends `bytes`, half-closes, and drains whatever comes back (bounded).
fn throw(bytes: &[u8]) {
    let harness = harness();
    harness.runtime.block_on(async {
        let mut client = Client::connect(harness.addr).await.expect("connect");
        let _ = client.write_raw(bytes).await;
        let _ = client.finish_writes().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_close(16 * 1024 * 1024)).await;
    });
}

/// The broker still answers a well-formed request on a new connection.
fn assert_serving() {
    let harness = harness();
    harness.runtime.block_on(async {
        let mut client = Client::connect(harness.addr).await.expect("connect after hostile input");
        let reply = tokio::time::timeout(Duration::from_secs(5), client.send(&ApiVersionsRequest::default(), 3))
            .await
            .expect("ApiVersions answered in time")
            .expect("ApiVersions answered");
        assert_eq!(reply.error_code, 0);
        let metadata = client
            .send(
                &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("target")))])),
                9,
            )
            .await
            .expect("metadata answered");
        assert_eq!(metadata.topics[0].partitions.len(), 2);
    });
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a connection task panicked");
}

fn name(text: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(text))
}

fn batch() -> Bytes {
    let mut builder = BatchBuilder::new(1_700_000_000_000);
    builder.push(Record::new(Some(b"key".to_vec()), Some(b"value".to_vec())).with_header("h", Some(b"v".to_vec())));
    builder.build()
}

/// Real request frames, as clients send them, to mutate.
fn real_frames() -> Vec<Vec<u8>> {
    let client_id = StrBytes::from_static_str("hostile");
    let mut frames = Vec::new();
    let mut push = |frame: Result<Bytes, conveyor_kafka::client::ClientError>| frames.push(frame.expect("encode").to_vec());
    push(encode_request(&ApiVersionsRequest::default(), 0, 1, &client_id));
    push(encode_request(
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("x"))
            .with_client_software_version(StrBytes::from_static_str("1")),
        3,
        1,
        &client_id,
    ));
    for version in [1, 9, 12] {
        push(encode_request(
            &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("target")))])),
            version,
            2,
            &client_id,
        ));
    }
    for version in [3, 7, 9] {
        let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("target"))
                .with_partition_data(vec![PartitionProduceData::default().with_index(1).with_records(Some(batch()))]),
        ]);
        push(encode_request(&produce, version, 3, &client_id));
    }
    for version in [4, 11, 12] {
        let fetch = FetchRequest::default()
            .with_max_wait_ms(10)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default().with_topic(name("target")).with_partitions(
                vec![FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20)],
            )]);
        push(encode_request(&fetch, version, 4, &client_id));
    }
    let list = ListOffsetsRequest::default().with_topics(vec![
        ListOffsetsTopic::default()
            .with_name(name("target"))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)]),
    ]);
    push(encode_request(&list, 1, 5, &client_id));
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(1000)
        .with_validate_only(true)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name("other"))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]);
    push(encode_request(&create, 5, 6, &client_id));
    let describe = DescribeConfigsRequest::default().with_include_synonyms(true).with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("target")),
    ]);
    push(encode_request(&describe, 4, 7, &client_id));
    let alter = IncrementalAlterConfigsRequest::default()
        .with_validate_only(true)
        .with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("target"))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("retention.ms"))
                        .with_value(Some(StrBytes::from_static_str("1000"))),
                ]),
        ]);
    push(encode_request(&alter, 1, 8, &client_id));
    let delete = DeleteRecordsRequest::default().with_topics(vec![
        DeleteRecordsTopic::default()
            .with_name(name("target"))
            .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(1).with_offset(0)]),
    ]);
    push(encode_request(&delete, 2, 10, &client_id));
    let epochs = OffsetForLeaderEpochRequest::default().with_topics(vec![
        OffsetForLeaderTopic::default()
            .with_topic(name("target"))
            .with_partitions(vec![OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(0)]),
    ]);
    push(encode_request(&epochs, 4, 11, &client_id));
    push(encode_request(
        &DescribeClusterRequest::default().with_endpoint_type(1),
        1,
        12,
        &client_id,
    ));
    frames
}

#[test]
fn real_frames_are_answered() {
    for frame in real_frames() {
        throw(&frame);
    }
    assert_serving();
}

#[test]
fn oversized_and_negative_frame_sizes_close_only_that_connection() {
    throw(&(i32::MAX).to_be_bytes());
    throw(&(-1i32).to_be_bytes());
    throw(&[0, 0, 0, 4, 0, 18]);
    // An array count of 2^31 - 1 in a tiny Metadata v1 request.
    throw(&[0, 0, 0, 16, 0, 3, 0, 1, 0, 0, 0, 7, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0]);
    assert_serving();
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: prop::sample::Index,
        mask: u8,
    },
    Truncate(prop::sample::Index),
    Overwrite {
        at: prop::sample::Index,
        bytes: Vec<u8>,
    },
    Extend(Vec<u8>),
    /// Keeps the size prefix consistent with the mutated body.
    Reframe,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| Mutation::Overwrite { at, bytes }),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
        Just(Mutation::Reframe),
    ]
}

fn apply(frame: &mut Vec<u8>, mutation: &Mutation) {
    if frame.is_empty() && !matches!(mutation, Mutation::Extend(_)) {
        // Positions index into the frame; an earlier truncation may have emptied it.
        return;
    }
    match mutation {
        Mutation::Flip { at, mask } => {
            let at = at.index(frame.len());
            frame[at] ^= mask;
        }
        Mutation::Truncate(at) => frame.truncate(at.index(frame.len())),
        Mutation::Overwrite { at, bytes } => {
            let at = at.index(frame.len());
            for (offset, byte) in bytes.iter().enumerate() {
                if let Some(slot) = frame.get_mut(at + offset) {
                    *slot = *byte;
                }
            }
        }
        Mutation::Extend(bytes) => frame.extend_from_slice(bytes),
        Mutation::Reframe => {
            if frame.len() >= 4 {
                let size = (frame.len() - 4) as i32;
                frame[0..4].copy_from_slice(&size.to_be_bytes());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_take_the_broker_down(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        throw(&bytes);
        assert_serving();
    }

    #[test]
    fn mutated_real_frames_never_take_the_broker_down(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
        reframe in any::<bool>(),
    ) {
        let frames = real_frames();
        let mut frame = frames[which.index(frames.len())].clone();
        for mutation in &mutations {
            apply(&mut frame, mutation);
        }
        if reframe {
            apply(&mut frame, &Mutation::Reframe);
        }
        throw(&frame);
        assert_serving();
    }
}
