//! Kafka transactions with real clients against a real `conveyor serve`:
//! each scenario is a script under `tests/interop/kafka/` that asserts and
//! exits non-zero on failure.

mod support;

use support::{Server, run_script};

#[test]
fn librdkafka_commits_and_aborts_and_a_second_producer_fences_the_first() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "kafka/transactions_confluent.py", &[]);
}

#[test]
fn librdkafka_read_committed_skips_aborted_data_and_stops_at_the_last_stable_offset() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "kafka/read_committed_confluent.py", &[]);
}

#[test]
fn librdkafka_consume_transform_produce_commits_offsets_with_the_transaction_and_drops_aborted_ones() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "kafka/consume_transform_produce_confluent.py", &[]);
}

#[test]
fn librdkafka_a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "kafka/transaction_timeout_confluent.py", &[]);
}

#[test]
fn librdkafka_a_transaction_open_when_the_broker_is_sigkilled_is_all_or_nothing_after_the_restart() {
    let errors = support::run_script_across_a_restart("kafka/transaction_crash_confluent.py", "produced", support::Stop::Kill);
    // Which way the transaction went (either is right): for the log.
    eprintln!("{}", errors.join("\n"));
}

#[test]
fn librdkafka_read_committed_from_the_start_after_a_sigterm_restart_drops_aborts_segments_back() {
    support::run_script_across_a_restart("kafka/read_committed_restart_confluent.py", "produced", support::Stop::Terminate);
}

#[test]
fn librdkafka_read_committed_from_the_start_after_a_sigkill_restart_drops_aborts_segments_back() {
    support::run_script_across_a_restart("kafka/read_committed_restart_confluent.py", "produced", support::Stop::Kill);
}

/// The admin's view of transactions, with exact requests (no Python client
/// ships ListTransactions or DescribeTransactions), and KIP-890's defence:
/// transactional data for a partition outside the ongoing transaction is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_describe_transactions_and_describe_producers_show_an_open_transaction() {
    use conveyor_kafka::client::Client;
    use conveyor_log::record::{BatchBuilder, Record};
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic};
    use kafka_protocol::messages::{
        AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeProducersRequest, DescribeTransactionsRequest, EndTxnRequest, GroupId,
        InitProducerIdRequest, ListTransactionsRequest, OffsetFetchRequest, ProduceRequest, TopicName, TransactionalId,
        TxnOffsetCommitRequest,
    };
    use kafka_protocol::protocol::StrBytes;

    let (_dir, server) = Server::start_in_tempdir();
    let mut client = Client::connect(server.kafka_addr).await.expect("connect");
    let topic = TopicName(StrBytes::from_static_str("txn-admin"));
    let transactional_id = TransactionalId(StrBytes::from_static_str("admin-tx"));
    let produce = |producer: Option<(i64, i16)>| {
        let mut builder = BatchBuilder::new(1_700_000_000_000);
        if let Some((producer_id, epoch)) = producer {
            builder = builder.producer(producer_id, epoch, 0);
        }
        builder.push(Record::new(None, Some(b"v".to_vec())));
        let mut bytes = bytes::BytesMut::from(&builder.build()[..]);
        if producer.is_some() {
            // The transactional attribute, and the CRC over it again.
            bytes[22] |= 0x10;
            let crc = conveyor_log::batch::compute_crc(&bytes);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        }
        ProduceRequest::default()
            .with_transactional_id(producer.map(|_| transactional_id.clone()))
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default().with_name(topic.clone()).with_partition_data(
                vec![PartitionProduceData::default().with_index(0).with_records(Some(bytes.freeze()))],
            )])
    };
    let created = client.send(&produce(None), 9).await.expect("produce");
    assert_eq!(created.responses[0].partition_responses[0].error_code, 0);
    let init = client
        .send(
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(transactional_id.clone()))
                .with_transaction_timeout_ms(60_000),
            4,
        )
        .await
        .expect("init");
    let (producer_id, epoch) = (init.producer_id, init.producer_epoch);
    // KIP-890: transactional data for a partition not (yet) added is refused.
    let early = client
        .send(&produce(Some((producer_id.0, epoch))), 9)
        .await
        .expect("produce before AddPartitionsToTxn");
    let refused = &early.responses[0].partition_responses[0];
    assert_eq!(refused.error_code, kafka_protocol::ResponseError::InvalidTxnState.code());
    assert_eq!(
        refused.error_message.as_ref().map(|text| text.as_str()),
        Some("Partition was not added to the transaction")
    );
    let added = client
        .send(
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(transactional_id.clone())
                .with_v3_and_below_producer_id(producer_id)
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![
                    AddPartitionsToTxnTopic::default().with_name(topic.clone()).with_partitions(vec![0]),
                ]),
            3,
        )
        .await
        .expect("add partitions");
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    let written = client
        .send(&produce(Some((producer_id.0, epoch))), 9)
        .await
        .expect("produce in the transaction");
    assert_eq!(written.responses[0].partition_responses[0].error_code, 0);

    let listed = client
        .send(
            &ListTransactionsRequest::default()
                .with_state_filters(vec![StrBytes::from_static_str("Ongoing"), StrBytes::from_static_str("Bogus")])
                .with_duration_filter(-1),
            1,
        )
        .await
        .expect("list");
    assert_eq!(listed.unknown_state_filters, vec![StrBytes::from_static_str("Bogus")]);
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(listed.transaction_states[0].transactional_id, transactional_id);
    assert_eq!(listed.transaction_states[0].producer_id, producer_id);

    let describe = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![transactional_id.clone(), TransactionalId(StrBytes::from_static_str("nope"))]);
    let described = client.send(&describe, 0).await.expect("describe");
    let state = &described.transaction_states[0];
    assert_eq!((state.error_code, state.transaction_state.as_str()), (0, "Ongoing"));
    assert_eq!(
        (state.producer_id, state.producer_epoch, state.transaction_timeout_ms),
        (producer_id, epoch, 60_000)
    );
    assert!(state.transaction_start_time_ms > 0);
    assert_eq!(
        (state.topics[0].topic.clone(), state.topics[0].partitions.clone()),
        (topic.clone(), vec![0])
    );
    assert_eq!(
        described.transaction_states[1].error_code,
        kafka_protocol::ResponseError::TransactionalIdNotFound.code()
    );

    let producers = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default().with_name(topic.clone()).with_partition_indexes(vec![0]),
    ]);
    let open_start = |response: &kafka_protocol::messages::DescribeProducersResponse| {
        response.topics[0].partitions[0]
            .active_producers
            .iter()
            .find(|state| state.producer_id == producer_id)
            .map(|state| state.current_txn_start_offset)
    };
    let before = client.send(&producers, 0).await.expect("describe producers");
    assert_eq!(open_start(&before), Some(1), "the transaction began at offset 1");

    // An offset pending in the transaction is unstable to a reader that
    // asks for stable offsets (read_committed), until the transaction ends.
    let group = GroupId(StrBytes::from_static_str("txn-admin-group"));
    let added_offsets = client
        .send(
            &AddOffsetsToTxnRequest::default()
                .with_transactional_id(transactional_id.clone())
                .with_producer_id(producer_id)
                .with_producer_epoch(epoch)
                .with_group_id(group.clone()),
            3,
        )
        .await
        .expect("add offsets");
    assert_eq!(added_offsets.error_code, 0);
    let committed = client
        .send(
            &TxnOffsetCommitRequest::default()
                .with_transactional_id(transactional_id.clone())
                .with_group_id(group.clone())
                .with_producer_id(producer_id)
                .with_producer_epoch(epoch)
                .with_topics(vec![
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(topic.clone())
                        .with_partitions(vec![
                            TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1),
                        ]),
                ]),
            3,
        )
        .await
        .expect("txn offset commit");
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    let fetch_offsets = |require_stable| {
        OffsetFetchRequest::default()
            .with_group_id(group.clone())
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(topic.clone())
                    .with_partition_indexes(vec![0]),
            ]))
            .with_require_stable(require_stable)
    };
    let stable = client.send(&fetch_offsets(true), 7).await.expect("offset fetch");
    let answer = &stable.topics[0].partitions[0];
    assert_eq!(
        (answer.error_code, answer.committed_offset),
        (kafka_protocol::ResponseError::UnstableOffsetCommit.code(), -1)
    );
    let unstable_ok = client.send(&fetch_offsets(false), 7).await.expect("offset fetch");
    assert_eq!(unstable_ok.topics[0].partitions[0].error_code, 0);

    let ended = client
        .send(
            &EndTxnRequest::default()
                .with_transactional_id(transactional_id.clone())
                .with_producer_id(producer_id)
                .with_producer_epoch(epoch)
                .with_committed(false),
            3,
        )
        .await
        .expect("abort");
    assert_eq!(ended.error_code, 0);
    let described = client.send(&describe, 0).await.expect("describe");
    assert_eq!(described.transaction_states[0].transaction_state.as_str(), "CompleteAbort");
    assert!(described.transaction_states[0].topics.is_empty());
    let after = client.send(&producers, 0).await.expect("describe producers");
    assert_eq!(open_start(&after), Some(-1), "no open transaction after the abort");
    let aborted = client.send(&fetch_offsets(true), 7).await.expect("offset fetch");
    let answer = &aborted.topics[0].partitions[0];
    assert_eq!((answer.error_code, answer.committed_offset), (0, -1), "the aborted offset is gone");
    // A write that arrives after its transaction ended does not join another.
    let late = client.send(&produce(Some((producer_id.0, epoch))), 9).await.expect("late produce");
    assert_eq!(
        late.responses[0].partition_responses[0].error_code,
        kafka_protocol::ResponseError::InvalidTxnState.code()
    );
}

#[test]
fn kafka_python_commits_and_aborts_and_its_read_committed_consumer_sees_only_committed_data() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "kafka/transactions_kafka_python.py", &[]);
}

#[test]
fn aiokafka_commits_aborts_and_is_fenced_and_its_read_committed_consumer_sees_only_committed_data() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "kafka/transactions_aiokafka.py", &[]);
}
