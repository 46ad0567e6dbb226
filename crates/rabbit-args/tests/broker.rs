//! This crate's vocabulary as the broker uses it (the binary gives it in
//! `BrokerConfig`; the core knows no `x-…` argument): a data directory
//! written before queue definitions kept a typed policy opens with every
//! queue's limits as before, and a stream's arguments follow a Kafka
//! config change to its retention.

use std::path::Path;

use conveyor_core::broker::{Broker, BrokerConfig};
use conveyor_core::queue::{Overflow, QueueType};
use conveyor_log::record::{BatchBuilder, Record};
use conveyor_log::{Log, LogConfig};

fn config(dir: &Path) -> BrokerConfig {
    BrokerConfig {
        argument_vocabulary: Some(conveyor_rabbit_args::VOCABULARY),
        ..BrokerConfig::new(dir)
    }
}

/// Writes `events` to the catalog's journal under `data_dir` and
/// `snapshot` beside it, as a broker of that age stored them.
async fn write_old_catalog(data_dir: &Path, events: &[&serde_json::Value], snapshot: Option<&serde_json::Value>) {
    let meta = data_dir.join("meta");
    let log = Log::open(meta.join("log"), LogConfig::default()).expect("the catalog's journal");
    let mut batch = BatchBuilder::new(0);
    for event in events {
        batch.push(Record::new(None, Some(event.to_string().into_bytes())));
    }
    log.append(batch.build()).await.expect("stored as the old broker stored them");
    log.close().expect("close");
    if let Some(snapshot) = snapshot {
        std::fs::write(meta.join("snapshot.json"), snapshot.to_string()).expect("snapshot");
    }
}

/// A data dir written before queue definitions kept a typed policy
/// (only the `x-…` arguments, in the declaration and in a later
/// arguments change) opens with the policy those arguments made, and
/// keeps the arguments as they were declared.
#[tokio::test]
async fn a_catalog_from_before_the_typed_policy_opens_with_the_policy_its_arguments_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = uuid::Uuid::new_v4();
    let declared = serde_json::json!({
        "event": "queue_declared",
        "id": id,
        "name": "legacy",
        "definition": {
            "durable": true,
            "auto_delete": false,
            "arguments": {"x-message-ttl": "5000", "x-max-length": "10", "x-dead-letter-exchange": "dlx"},
        },
        "created_ms": 0,
    });
    let arguments_set = serde_json::json!({
        "event": "queue_arguments_set",
        "id": id,
        "name": "legacy",
        "arguments": {"x-message-ttl": "5000", "x-max-length": "20", "x-overflow": "reject-publish", "x-dead-letter-exchange": "dlx"},
    });
    let quorum = serde_json::json!({
        "event": "queue_declared",
        "id": uuid::Uuid::new_v4(),
        "name": "votes",
        "definition": {"durable": true, "auto_delete": false, "arguments": {"x-queue-type": "quorum"}},
        "created_ms": 0,
    });
    // As the SQS door declared a FIFO queue with MessageRetentionPeriod
    // and a RedrivePolicy: its attributes as `sqs.…` arguments and the
    // `x-…` arguments the core read then.
    // A snapshot of the same age: its queue records have no policy either.
    let snapshotted = serde_json::json!({
        "offset": 0,
        "state": {"topics": {}, "queues": {"capped": {
            "id": uuid::Uuid::new_v4(),
            "name": "capped",
            "definition": {"durable": true, "auto_delete": false, "arguments": {"x-max-length-bytes": "4096", "x-overflow": "reject-publish-dlx"}},
            "created_ms": 0,
        }}},
    });
    let sqs = serde_json::json!({
        "event": "queue_declared",
        "id": uuid::Uuid::new_v4(),
        "name": "orders.fifo",
        "definition": {"durable": true, "auto_delete": false, "arguments": {
            "x-message-delays": "true",
            "sqs.MessageRetentionPeriod": "120",
            "x-message-retention-ms": "120000",
            "sqs.VisibilityTimeout": "45",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "orders-dlq.fifo",
            "x-delivery-limit": "3",
            "x-message-groups": "true",
        }},
        "created_ms": 0,
    });
    write_old_catalog(dir.path(), &[&declared, &arguments_set, &quorum, &sqs], Some(&snapshotted)).await;
    let broker = Broker::open(config(dir.path())).expect("open the old data dir");
    let legacy = broker.queue("legacy").expect("declared by the old catalog");
    let policy = legacy.policy();
    assert_eq!(policy.message_ttl_ms, Some(5000));
    assert_eq!(policy.max_length, Some(20), "the later arguments change");
    assert_eq!(policy.overflow, Overflow::RejectPublish);
    assert_eq!(policy.dead_letter_exchange.as_deref(), Some("dlx"));
    assert_eq!(*policy, legacy.definition().policy);
    assert_eq!(
        legacy.definition().arguments.get("x-max-length").map(String::as_str),
        Some("20"),
        "the arguments as declared, for the admin API and redeclarations"
    );
    let votes = broker.queue("votes").expect("declared by the old catalog").policy();
    assert_eq!(votes.queue_type, QueueType::Quorum);
    assert_eq!(votes.delivery_limit, Some(21), "a quorum queue's default limit, as before");
    let orders = broker.queue("orders.fifo").expect("declared over SQS by the old catalog").policy();
    assert!(orders.message_delays && orders.message_groups, "{orders:?}");
    assert_eq!(orders.retention_ms, Some(120_000));
    assert_eq!(orders.dead_letter_exchange.as_deref(), Some(""));
    assert_eq!(orders.dead_letter_routing_key.as_deref(), Some("orders-dlq.fifo"));
    assert_eq!(orders.delivery_limit, Some(3), "maxReceiveCount, as before");
    let capped = broker.queue("capped").expect("in the old snapshot").policy();
    assert_eq!(capped.max_length_bytes, Some(4096));
    assert_eq!(capped.overflow, Overflow::RejectPublishDlx);
    broker.close().expect("close");
    drop(broker);

    // Its next snapshot keeps the policies read: they no longer depend on the vocabulary.
    let broker = Broker::open(BrokerConfig::new(dir.path())).expect("reopen without the vocabulary");
    assert_eq!(broker.queue("legacy").expect("kept").policy().max_length, Some(20));
    assert_eq!(broker.queue("capped").expect("kept").policy().max_length_bytes, Some(4096));
}

#[tokio::test]
async fn a_kafka_config_change_to_a_stream_shows_in_the_arguments_rabbitmq_clients_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::open(config(dir.path())).expect("open");
    let arguments = [("x-queue-type", "stream"), ("x-max-age", "7D"), ("x-max-length-bytes", "5000")]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let definition = conveyor_rabbit_args::definition("events", true, false, arguments).expect("valid");
    let (declared, _) = broker.declare_queue("events", definition).await.expect("declare");
    let change = |key: &str, value: Option<&str>| std::collections::BTreeMap::from([(key.to_owned(), value.map(str::to_owned))]);
    broker
        .alter_topic_config("events", change("retention.bytes", Some("-1")), false, false)
        .await
        .expect("altered");
    let shown = declared.definition().arguments.clone();
    assert_eq!(shown.get("x-max-length-bytes"), None, "no byte limit now");
    assert_eq!(shown.get("x-max-age").map(String::as_str), Some("7D"), "unchanged, as declared");
    broker
        .alter_topic_config("events", change("retention.ms", Some("3600000")), false, false)
        .await
        .expect("altered");
    let shown = declared.definition().arguments.clone();
    assert_eq!(shown.get("x-max-age").map(String::as_str), Some("3600s"));
    assert_eq!(
        conveyor_rabbit_args::policy(&shown).expect("valid"),
        *declared.policy(),
        "the arguments say what the policy does"
    );
}
