//! Real Kafka clients (kafka-python, confluent-kafka/librdkafka, kafkajs)
//! against a real `conveyor serve`. Each scenario is a script under
//! `tests/interop/kafka/` that asserts and exits non-zero on failure.

mod support;

use support::{Server, run_script};

fn server() -> (tempfile::TempDir, Server) {
    Server::start_in_tempdir()
}

#[test]
fn kafka_python_produce_is_held_during_a_disk_alarm_and_stored_once_it_clears() {
    let (_dir, server) = server();
    run_script(&server, "kafka/alarm_kafka_python.py", &[]);
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

#[test]
fn librdkafka_groups_split_describe_and_survive_a_killed_member() {
    let (_dir, server) = server();
    run_script(&server, "kafka/groups_confluent.py", &[]);
}

#[test]
fn kip848_librdkafka_members_split_a_topic_and_the_survivor_takes_all_partitions_after_a_close() {
    // A short heartbeat interval so the group settles within the test's deadlines.
    let (_dir, server) = support::start_with_config("[limits]\ngroup_consumer_heartbeat_interval_ms = 500\n");
    run_script(&server, "kafka/kip848_confluent.py", &[]);
}

/// What `kip848_restart_confluent.py` needs of the broker: a short heartbeat
/// interval, so the group settles within the script's deadlines.
const KIP848_RESTART_CONFIG: &str = "[limits]\ngroup_consumer_heartbeat_interval_ms = 500\n";

#[test]
fn kip848_librdkafka_members_keep_their_ids_epochs_and_partitions_across_a_sigterm_restart() {
    support::run_script_across_a_restart_with_config(
        "kafka/kip848_restart_confluent.py",
        "settled",
        support::Stop::Terminate,
        Some(KIP848_RESTART_CONFIG),
    );
}

#[test]
fn kip848_librdkafka_members_keep_their_ids_epochs_and_partitions_across_a_sigkill_restart() {
    support::run_script_across_a_restart_with_config(
        "kafka/kip848_restart_confluent.py",
        "settled",
        support::Stop::Kill,
        Some(KIP848_RESTART_CONFIG),
    );
}

#[test]
fn kip848_static_member_that_closes_is_replaced_by_its_instance_id_without_moving_other_partitions() {
    let (_dir, server) = support::start_with_config("[limits]\ngroup_consumer_heartbeat_interval_ms = 500\n");
    run_script(&server, "kafka/kip848_static_confluent.py", &[]);
}

#[test]
fn kip848_regex_subscription_gets_matching_topics_including_one_created_after_it() {
    let (_dir, server) = support::start_with_config("[limits]\ngroup_consumer_heartbeat_interval_ms = 500\n");
    run_script(&server, "kafka/kip848_regex_confluent.py", &[]);
}

#[test]
fn librdkafka_member_killed_during_a_rebalance_is_expired_after_its_session_timeout() {
    let (_dir, server) = server();
    let output = run_script(&server, "kafka/group_expiry_confluent.py", &["kill"]);
    eprintln!("{}", output.stdout);
}

#[test]
fn after_a_storm_of_100_librdkafka_members_dying_a_new_member_gets_every_partition_within_seconds() {
    let (_dir, server) = server();
    let output = run_script(&server, "kafka/group_expiry_confluent.py", &["storm"]);
    eprintln!("{}", output.stdout);
}

#[test]
fn a_group_consumer_resumes_from_committed_offsets_after_the_broker_restarts_under_it() {
    support::run_script_across_a_restart("kafka/restart_resume_kafka_python.py", "committed", support::Stop::Terminate);
}

#[test]
fn kafka_python_seed_snippet_publishes_and_processes_order_events() {
    let (_dir, server) = server();
    run_script(&server, "kafka/seed_kafka_python.py", &[]);
}

#[test]
fn idempotent_producers_of_librdkafka_and_kafka_python_write_each_message_once_in_order() {
    let (_dir, server) = server();
    run_script(&server, "kafka/idempotent_producers.py", &[]);
}

#[test]
fn kafka_python_admin_alters_configs_adds_partitions_deletes_records_and_describes_the_cluster() {
    let (_dir, server) = server();
    run_script(&server, "kafka/admin_kafka_python.py", &[]);
}

#[test]
fn librdkafka_admin_alters_configs_adds_partitions_deletes_records_and_lists_offsets() {
    let (_dir, server) = server();
    run_script(&server, "kafka/admin_confluent.py", &[]);
}

#[test]
fn librdkafka_lists_the_offset_and_timestamp_of_the_record_with_the_largest_timestamp() {
    let (_dir, server) = server();
    run_script(&server, "kafka/max_timestamp_confluent.py", &[]);
}

#[test]
fn kafka_python_describes_the_log_dir_with_partition_sizes_and_free_space() {
    let (_dir, server) = server();
    let data_dir = server.data_dir.to_string_lossy().into_owned();
    run_script(&server, "kafka/log_dirs_kafka_python.py", &[&data_dir]);
}

#[test]
fn share_consumers_split_a_partition_and_release_redelivers_while_reject_does_not() {
    let (_dir, server) = server();
    run_script(&server, "kafka/share_groups_confluent.py", &[]);
}

#[test]
fn a_share_groups_accepted_records_stay_accepted_and_the_rest_are_delivered_after_a_broker_restart() {
    support::run_script_across_a_restart("kafka/share_restart_confluent.py", "accepted", support::Stop::Terminate);
}

#[test]
fn a_share_consumer_keeps_its_member_id_and_epoch_and_consumes_on_across_a_sigterm_restart() {
    support::run_script_across_a_restart("kafka/share_member_restart_confluent.py", "consumed", support::Stop::Terminate);
}

#[test]
fn a_share_consumer_keeps_its_member_id_and_epoch_and_consumes_on_across_a_sigkill_restart() {
    support::run_script_across_a_restart("kafka/share_member_restart_confluent.py", "consumed", support::Stop::Kill);
}

#[test]
fn a_share_consumers_unacknowledged_record_is_redelivered_to_another_after_the_lock_duration() {
    let (_dir, server) = server();
    run_script(&server, "kafka/share_lock_expiry_confluent.py", &[]);
}

#[test]
fn a_read_committed_share_group_gets_committed_records_only_and_a_read_uncommitted_one_every_data_record() {
    let (_dir, server) = server();
    run_script(&server, "kafka/share_isolation_confluent.py", &[]);
}

#[test]
fn group_configs_are_checked_as_kafka_checks_them_described_kept_across_a_restart_and_used() {
    support::run_script_across_a_restart("kafka/group_configs_confluent.py", "set", support::Stop::Terminate);
}

#[test]
fn a_classic_join_on_a_share_groups_id_is_refused_with_inconsistent_group_protocol() {
    let (_dir, server) = server();
    run_script(&server, "kafka/share_group_id_classic_join_confluent.py", &[]);
}

#[test]
fn a_share_group_set_to_earliest_through_incremental_alter_configs_gets_records_from_before_its_first_fetch() {
    let (_dir, server) = server();
    run_script(&server, "kafka/share_auto_offset_reset_confluent.py", &[]);
}

#[test]
fn a_share_groups_own_delivery_count_limit_archives_a_record_released_that_often() {
    let (_dir, server) = server();
    run_script(&server, "kafka/share_delivery_limit_confluent.py", &[]);
}
