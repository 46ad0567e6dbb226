//! Real Kafka clients (kafka-python, confluent-kafka/librdkafka, kafkajs)
//! against a real `conveyor serve`. Each scenario is a script under
//! `tests/interop/kafka/` that asserts and exits non-zero on failure.

mod support;

use support::{Server, run_script};

fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    (dir, server)
}

#[test]
fn kafka_python_keyed_messages_keep_their_order_within_a_partition() {
    let (_dir, server) = server();
    run_script(&server, "kafka/keyed_order_kafka_python.py", &[]);
}

#[test]
fn librdkafka_round_trips_every_codec_headers_and_a_900_kb_message() {
    let (_dir, server) = server();
    run_script(&server, "kafka/codecs_confluent.py", &[]);
}

#[test]
fn kafkajs_produces_and_administers_topics() {
    let (_dir, server) = server();
    run_script(&server, "kafka/produce_kafkajs.js", &[]);
}

#[test]
fn kafkajs_seed_snippet_produces_and_its_group_consumer_receives() {
    let (_dir, server) = server();
    run_script(&server, "kafka/seed_kafkajs.js", &[]);
}

#[test]
fn kafka_python_groups_split_partitions_resume_after_commits_and_report_lag() {
    let (_dir, server) = server();
    run_script(&server, "kafka/groups_kafka_python.py", &[]);
}
