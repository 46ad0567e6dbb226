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
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = format!("127.0.0.1:{}", support::free_port());
    let mut server = Server::start_with(dir.path(), &["--kafka-addr", &kafka], &[]);
    let mut client = support::spawn_script(&server, "kafka/transaction_crash_confluent.py", &[]);
    let stdout = client.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let produced = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(produced, "produced", "expected the script to produce first");
    server.kill();
    let _server = Server::start_with(dir.path(), &["--kafka-addr", &kafka], &[]);
    writeln!(client.stdin.as_mut().expect("stdin"), "restarted").expect("tell the script");
    let status = support::wait_bounded(&mut client, support::SCRIPT_TIMEOUT);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let errors: Vec<String> = support::forward_lines(client.stderr.take().expect("stderr")).iter().collect();
    if status.is_none() {
        let _ = client.kill();
        let _ = client.wait();
    }
    assert!(
        status.is_some_and(|status| status.success()),
        "script failed: {status:?}\nstdout: {rest:?}\nstderr:\n{}",
        errors.join("\n")
    );
    assert_eq!(rest.last().map(String::as_str), Some("ok"));
}
