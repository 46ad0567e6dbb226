//! SQS interop: the AWS SDK v3 for JavaScript and boto3 against a spawned
//! `conveyor serve`, and pika on the same queues over AMQP.

mod support;

use support::{Server, run_script};

fn server() -> (tempfile::TempDir, Server) {
    Server::start_in_tempdir()
}

#[test]
fn aws_sdk_v3_seed_snippet_sends_then_long_polls_the_message_back() {
    let (_dir, server) = server();
    run_script(&server, "sqs/seed_sdk_v3.js", &[]);
}

#[test]
fn boto3_creates_lists_describes_purges_and_deletes_queues_with_modeled_errors() {
    let (_dir, server) = server();
    run_script(&server, "sqs/queues_boto3.py", &[]);
}

#[test]
fn boto3_sends_receives_deletes_batches_redelivers_after_visibility_timeout_and_long_polls() {
    let (_dir, server) = server();
    run_script(&server, "sqs/messages_boto3.py", &[]);
}

#[test]
fn a_message_sent_over_sqs_is_consumed_over_amqp_and_the_other_way_round() {
    let (_dir, server) = server();
    run_script(&server, "sqs/amqp_bridge_pika.py", &[]);
}

#[test]
fn an_amqp_declared_length_limit_holds_for_sqs_sends_and_batches() {
    let (_data, server) = server();
    run_script(&server, "sqs/length_limits_pika_boto3.py", &[]);
}

#[test]
fn boto3_redrive_policy_moves_a_message_to_the_dead_letter_queue_after_max_receive_count() {
    let (_dir, server) = server();
    run_script(&server, "sqs/redrive_boto3.py", &[]);
}

#[test]
fn boto3_fifo_queue_keeps_group_order_blocks_a_group_in_flight_and_deduplicates_by_id_and_content() {
    let (_dir, server) = server();
    run_script(&server, "sqs/fifo_boto3.py", &[]);
}

#[test]
fn aws_sdk_v3_fifo_queue_sends_with_sequence_numbers_deduplicates_and_keeps_group_order() {
    let (_dir, server) = server();
    run_script(&server, "sqs/fifo_sdk_v3.js", &[]);
}

#[test]
fn boto3_set_queue_attributes_read_back_and_change_visibility_size_wait_and_redrive() {
    let (_dir, server) = server();
    run_script(&server, "sqs/set_attributes_boto3.py", &[]);
}

/// Runs `script` with `before STATE` against a broker, stops it with `stop`,
/// and runs it with `after STATE` against a broker restarted on the same
/// data directory.
fn across_a_restart(script: &str, stop: impl FnOnce(&mut Server)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("expected.json");
    let state = state.to_str().expect("utf-8 path");
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    run_script(&server, script, &["before", state]);
    stop(&mut server);
    let server = Server::start(&data);
    run_script(&server, script, &["after", state]);
}

#[test]
fn boto3_queue_contents_attributes_and_in_flight_messages_survive_a_broker_restart() {
    across_a_restart("sqs/restart_boto3.py", |server| {
        assert!(server.terminate().0.success(), "SIGTERM exits 0");
    });
}

#[test]
fn a_delayed_message_tried_early_is_received_once_after_a_crash_and_never_dead_lettered() {
    // SIGKILL: no snapshot at close; the journal and the record are all there is.
    across_a_restart("sqs/delay_restart_boto3.py", Server::kill);
}

#[test]
fn boto3_tags_queues_and_reads_first_receive_timestamps_and_delayed_counts() {
    let (_dir, server) = server();
    run_script(&server, "sqs/tags_boto3.py", &[]);
}

#[test]
fn a_fifo_queue_keeps_its_group_rule_for_amqp_consumers_too() {
    let (_dir, server) = server();
    run_script(&server, "sqs/fifo_amqp_pika.py", &[]);
}

#[test]
fn boto3_message_move_tasks_move_dlq_messages_back_to_their_sources_or_a_destination_paced_and_cancellable() {
    let (_dir, server) = server();
    run_script(&server, "sqs/move_task_boto3.py", &[]);
}

#[test]
fn boto3_redrive_allow_policy_reads_back_and_decides_which_queues_may_name_the_dead_letter_queue() {
    let (_dir, server) = server();
    run_script(&server, "sqs/redrive_allow_boto3.py", &[]);
}

#[test]
fn boto3_message_retention_period_round_trips_and_is_range_checked() {
    let (_dir, server) = server();
    run_script(&server, "sqs/retention_boto3.py", &[]);
}

#[test]
fn boto3_a_twelve_digit_access_key_names_the_account_in_sqs_and_sns_urls_and_arns_over_one_namespace() {
    let (_dir, server) = server();
    run_script(&server, "sqs/accounts_boto3.py", &[]);
}

#[test]
fn a_fifo_queue_deduplicates_sns_deliveries_admin_publishes_and_sqs_sends_in_one_window() {
    let (_dir, server) = server();
    run_script(&server, "sqs/dedup_paths_boto3.py", &[]);
}

#[test]
fn aws_sdk_v3_start_message_move_task_moves_a_dead_letter_back_to_its_source() {
    let (_dir, server) = server();
    run_script(&server, "sqs/move_task_sdk_v3.js", &[]);
}
