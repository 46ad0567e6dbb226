//! SNS interop: boto3 and the AWS SDK v3 for JavaScript against a spawned
//! `conveyor serve`, fanning out into SQS queues read back over SQS.

mod support;

use support::{Server, run_script};

#[test]
fn boto3_fans_out_to_a_raw_and_a_filtered_sqs_subscriber_with_listings_batches_and_modeled_errors() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "sns/fanout_boto3.py", &[]);
}

#[test]
fn aws_sdk_v3_publishes_to_a_topic_and_its_sqs_subscribers_receive_it() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "sns/fanout_sdk_v3.js", &[]);
}

#[test]
fn topics_and_subscriptions_survive_a_broker_crash_and_keep_delivering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path());
    run_script(&server, "sns/restart_boto3.py", &["setup"]);
    // SIGKILL: whatever was acknowledged must be on disk already.
    server.kill();
    let server = Server::start(dir.path());
    run_script(&server, "sns/restart_boto3.py", &["verify"]);
}

#[test]
fn malformed_unknown_oversized_and_mutated_sns_requests_get_parseable_errors_never_a_500() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "sns/bad_input.py", &[]);
}
