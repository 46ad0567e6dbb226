//! Log compaction (`cleanup.policy=compact`) with real Kafka clients against
//! `conveyor serve`: librdkafka and kafkajs see only each key's latest value
//! once the cleaner has run (in batches of each of Kafka's codecs too), a deleted key disappears, a keyless record is
//! refused, an aborted transaction's records are removed, a record older
//! than `max.compaction.lag.ms` is compacted (its segment rolled), and
//! compaction holds across a restart. The broker runs its
//! cleaner every 100 ms (`[log_cleaner] backoff_ms`); the scripts poll what
//! a from-the-beginning consumer reads, with a deadline.

mod support;

use support::{Server, run_script};

/// A cleaner pass every 100 ms, and segments small enough (1 KiB) that a
/// few records fill one and the records the test reads get sealed.
const CLEANER_CONFIG: &str = "[log_cleaner]\nbackoff_ms = 100\n\n[limits]\nsegment_bytes_min = 1024\n";

fn start_in(dir: &std::path::Path, kafka: &str) -> Server {
    let config = dir.join("conveyor.toml");
    std::fs::write(&config, CLEANER_CONFIG).expect("write the config file");
    let config = config.to_str().expect("utf-8 path").to_owned();
    Server::start_with(&dir.join("data"), &["--config", &config, "--kafka-addr", kafka], &[])
}

#[test]
fn librdkafka_reads_only_the_latest_value_per_key_of_a_compacted_topic_and_a_keyless_record_is_refused() {
    let (_dir, server) = support::start_with_config(CLEANER_CONFIG);
    run_script(&server, "kafka/compaction_confluent.py", &[]);
}

#[test]
fn librdkafka_compressed_batches_of_every_codec_are_compacted_to_the_latest_value_per_key() {
    let (_dir, server) = support::start_with_config(CLEANER_CONFIG);
    run_script(&server, "kafka/compaction_codecs_confluent.py", &[]);
}

#[test]
fn the_cleaner_removes_an_aborted_transactions_records_and_keeps_the_committed_ones() {
    let (_dir, server) = support::start_with_config(CLEANER_CONFIG);
    run_script(&server, "kafka/compaction_transactions_confluent.py", &[]);
}

#[test]
fn a_record_older_than_max_compaction_lag_is_compacted_though_segment_ms_is_a_week() {
    let (_dir, server) = support::start_with_config(CLEANER_CONFIG);
    run_script(&server, "kafka/compaction_lag_confluent.py", &[]);
}

#[test]
fn kafkajs_reads_a_compacted_topic_as_a_key_value_table() {
    let (_dir, server) = support::start_with_config(CLEANER_CONFIG);
    run_script(&server, "kafka/compaction_table_kafkajs.js", &[]);
}

#[test]
fn compaction_holds_across_a_restart_and_goes_on_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = format!("127.0.0.1:{}", support::free_port());
    let topic = format!("compacted-restart-{}", std::process::id());
    let mut server = start_in(dir.path(), &kafka);
    let produced = run_script(&server, "kafka/compaction_confluent.py", &["produce", &topic]);
    let latest = produced.stdout.lines().next().expect("the table printed").to_owned();
    let (status, _) = server.terminate();
    assert!(status.success(), "clean shutdown: {status:?}");
    let server = start_in(dir.path(), &kafka);
    run_script(&server, "kafka/compaction_confluent.py", &["verify", &topic, &latest]);
}
