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
