//! AMQP 0-9-1 interop: real RabbitMQ client libraries (amqplib, pika)
//! against a spawned `conveyor serve`.

mod support;

use support::{Server, run_script};

fn server() -> (tempfile::TempDir, Server) {
    Server::start_in_tempdir()
}

#[test]
fn amqplib_seed_snippet_sends_to_the_tasks_queue_and_its_consumer_acks() {
    let (_dir, server) = server();
    run_script(&server, "amqp/seed_amqplib_tasks.js", &[]);
}

#[test]
fn pika_work_queue_prefetch_competing_consumers_requeue_reject_and_confirms() {
    let (_dir, server) = server();
    run_script(&server, "amqp/work_queue_pika.py", &[]);
}

#[test]
fn pika_consumers_of_higher_priority_get_messages_while_they_have_room() {
    let (_dir, server) = server();
    run_script(&server, "amqp/priorities_pika.py", &[]);
}

#[test]
fn pika_priority_queue_delivers_higher_priorities_first_keeps_them_on_requeue_and_refuses_bad_maximums() {
    let (_dir, server) = server();
    run_script(&server, "amqp/message_priorities_pika.py", &["behaviour"]);
}

#[test]
fn a_priority_queue_keeps_its_delivery_order_across_a_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = format!("priorities-{}", std::process::id());
    let mut server = Server::start(dir.path());
    run_script(&server, "amqp/message_priorities_pika.py", &["publish", &queue]);
    server.kill();
    let server = Server::start(dir.path());
    run_script(&server, "amqp/message_priorities_pika.py", &["verify", &queue]);
}

#[test]
fn amqplib_priority_queue_delivers_higher_priorities_first() {
    let (_dir, server) = server();
    run_script(&server, "amqp/message_priorities_amqplib.js", &[]);
}

#[test]
fn pika_publishers_are_blocked_while_a_disk_alarm_is_on_and_nothing_is_lost() {
    let (_dir, server) = server();
    run_script(&server, "amqp/blocked_pika.py", &[]);
}

#[test]
fn a_durable_queue_keeps_every_confirmed_message_and_every_ack_across_a_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = format!("durable-{}", std::process::id());
    let mut server = Server::start(dir.path());
    run_script(&server, "amqp/durable_pika.py", &["publish", &queue]);
    server.kill();
    let server = Server::start(dir.path());
    run_script(&server, "amqp/durable_pika.py", &["verify", &queue]);
}

#[test]
fn amqplib_seed_fanout_reaches_both_services() {
    let (_dir, server) = server();
    run_script(&server, "amqp/seed_amqplib_fanout.js", &[]);
}

#[test]
fn pika_routes_through_direct_topic_headers_exchange_bindings_alternate_exchanges_and_into_kafka() {
    let (_dir, server) = server();
    run_script(&server, "amqp/routing_pika.py", &[&server.kafka_addr.to_string()]);
}

#[test]
fn pika_a_queue_that_exists_is_compared_before_its_arguments_are_checked_as_rabbitmq_does() {
    let (_dir, server) = server();
    run_script(&server, "amqp/redeclare_pika.py", &[]);
}

#[test]
fn pika_dead_letters_rejected_expired_over_limit_and_overflowing_messages() {
    let (_dir, server) = server();
    run_script(&server, "amqp/dead_letters_pika.py", &[]);
}

#[test]
fn pika_a_dead_letter_cycle_without_rejections_delivers_each_message_once_around() {
    let (_dir, server) = server();
    run_script(&server, "amqp/dead_letter_cycle_pika.py", &[]);
}

#[test]
fn pika_nacked_messages_come_back_after_exponential_backoff_then_go_to_the_dead_letter_queue() {
    let (_dir, server) = server();
    run_script(&server, "amqp/retry_backoff_pika.py", &[]);
}

#[test]
fn pika_transactions_commit_and_roll_back_publishes_and_acks_global_prefetch_bounds_a_channel_and_flow_pauses_it() {
    let (_dir, server) = server();
    run_script(&server, "amqp/tx_qos_pika.py", &[]);
}

#[test]
fn users_from_the_config_file_log_in_and_wrong_passwords_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("conveyor.toml");
    std::fs::write(&config, "[amqp.users]\nalice = \"s3cret\"\n").expect("write config");
    let config = config.to_string_lossy().into_owned();
    let server = Server::start_with(&dir.path().join("data"), &["--config", &config], &[]);
    run_script(&server, "amqp/users_pika.py", &["alice", "s3cret"]);
}

#[test]
fn pika_queues_left_unused_past_x_expires_are_deleted_and_consumed_ones_stay() {
    let (_dir, server) = server();
    run_script(&server, "amqp/expires_pika.py", &[]);
}

#[test]
fn pika_vhosts_isolate_queues_and_dead_letters_survive_a_restart_and_deleting_one_removes_its_queues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path());
    // A name with a space and a slash: both must survive the URL and the broker-wide name.
    let vhost = "staging/eu 1";
    run_script(&server, "amqp/vhosts_pika.py", &["before", vhost]);
    assert!(server.terminate().0.success(), "SIGTERM exits 0");
    let server = Server::start(dir.path());
    run_script(&server, "amqp/vhosts_pika.py", &["after", vhost]);
}

#[test]
fn vhosts_from_the_config_file_exist_and_users_limited_to_some_vhosts_are_refused_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("conveyor.toml");
    let text =
        "[amqp]\nvhosts = [\"staging\"]\n[amqp.users]\nalice = \"s3cret\"\nbob = \"s3cret\"\n[amqp.user_vhosts]\nbob = [\"staging\"]\n";
    std::fs::write(&config, text).expect("write config");
    let config = config.to_string_lossy().into_owned();
    let server = Server::start_with(&dir.path().join("data"), &["--config", &config], &[]);
    run_script(&server, "amqp/vhost_users_pika.py", &["bob", "alice", "staging"]);
}

#[test]
fn amqplib_opens_a_vhost_from_the_url_and_its_queues_and_exchanges_are_its_own() {
    let (_dir, server) = server();
    run_script(&server, "amqp/vhosts_amqplib.js", &[]);
}

#[test]
fn pika_consumers_are_cancelled_when_their_queue_is_deleted_and_update_secret_keeps_the_connection() {
    let (_dir, server) = server();
    run_script(&server, "amqp/cancel_notify_pika.py", &[]);
}

#[test]
fn pika_rpc_over_direct_reply_to_and_its_misuse_errors() {
    let (_dir, server) = server();
    run_script(&server, "amqp/direct_reply_to_pika.py", &[]);
}

#[test]
fn amqplib_rpc_over_direct_reply_to() {
    let (_dir, server) = server();
    run_script(&server, "amqp/direct_reply_to_amqplib.js", &[]);
}

#[test]
fn pika_quorum_queue_dead_letters_after_20_returns_counting_them_and_refuses_non_durable_declarations() {
    let (_dir, server) = server();
    run_script(&server, "amqp/quorum_pika.py", &[]);
}

#[test]
fn faststream_rabbit_broker_subscribes_publishes_and_answers_requests_over_direct_reply_to() {
    let (_dir, server) = server();
    run_script(&server, "amqp/faststream_rabbit.py", &[]);
}

#[test]
fn pika_stream_consumers_read_from_first_last_next_offsets_timestamps_and_intervals_without_removing_anything() {
    let (_dir, server) = server();
    run_script(&server, "amqp/streams_pika.py", &[]);
}

#[test]
fn a_stream_is_a_one_partition_kafka_topic_and_a_one_partition_kafka_topic_a_stream_at_the_same_offsets() {
    let (_dir, server) = server();
    run_script(&server, "amqp/streams_kafka.py", &[]);
}

#[test]
fn a_streams_retention_changed_by_a_kafka_alter_configs_applies_at_once() {
    let (_dir, server) = server();
    run_script(&server, "amqp/streams_retention_kafka.py", &[]);
}

#[test]
fn a_stream_delivers_every_record_of_compressed_batches_produced_into_its_own_topic_or_its_kafka_topic() {
    let (_dir, server) = server();
    run_script(&server, "amqp/streams_kafka_codecs.py", &[]);
}

#[test]
fn a_stream_over_a_kafka_topic_delivers_committed_records_only_and_waits_at_the_last_stable_offset() {
    let (_dir, server) = server();
    run_script(&server, "amqp/streams_kafka_transactions.py", &[]);
}

#[test]
fn amqplib_stream_consumers_read_from_first_offsets_next_timestamps_and_intervals_and_kafkajs_reads_and_writes_the_same_stream() {
    let (_dir, server) = server();
    run_script(&server, "amqp/streams_amqplib.js", &[]);
}

#[test]
fn pika_single_active_consumer_hands_over_in_order_on_cancel_and_on_connection_loss() {
    let (_dir, server) = server();
    run_script(&server, "amqp/single_active_consumer_pika.py", &[]);
}

#[test]
fn pika_a_consumer_holding_a_delivery_past_x_consumer_timeout_loses_its_channel_and_another_gets_it() {
    let (_dir, server) = server();
    run_script(&server, "amqp/consumer_timeout_pika.py", &[]);
}

#[test]
fn the_consumer_timeout_setting_closes_the_channel_of_a_consumer_holding_a_delivery_past_it() {
    let (_dir, server) = support::start_with_config("consumer_timeout = 1000\n");
    run_script(&server, "amqp/consumer_timeout_pika.py", &["broker-wide"]);
}

#[test]
fn aio_pika_stream_consumers_read_from_first_offsets_next_timestamps_and_intervals_and_aiokafka_reads_and_writes_the_same_stream() {
    let (_dir, server) = server();
    run_script(&server, "amqp/streams_aio_pika.py", &[]);
}
