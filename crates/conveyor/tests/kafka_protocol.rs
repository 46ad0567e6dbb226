//! Kafka protocol behaviour that client libraries hide (their retries), tested
//! with exact requests against a real `conveyor serve`.

mod support;

use bytes::Bytes;
use conveyor_kafka::client::Client;
use conveyor_log::record::{BatchBuilder, Record};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProduceResponse, TopicName};
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
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("idempotence")))
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
    let init = client
        .send(
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
            4,
        )
        .await
        .expect("init");
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
    let init = client
        .send(
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
            4,
        )
        .await
        .expect("init");
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
