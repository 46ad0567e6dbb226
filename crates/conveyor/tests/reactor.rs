//! Nothing blocks the reactor: a real `conveyor serve` under real client
//! traffic counts every blocking file operation or blocking wait that runs
//! on one of its async worker threads (`conveyor_log::reactor_guard`,
//! exported as `conveyor_blocking_calls_on_reactor_total`), and the count
//! stays 0 — including across the paths that only run now and then, such as
//! a queue's cursor snapshot (every 10,000 cursor events) with the prefix
//! truncation of its log.

mod support;

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, BasicQosOptions};
use support::lapin_client::{confirming_channel, consume_acking, declare, publish_confirmed, url};
use support::{Server, run_script};

/// Bounds every wait on the broker.
const WAIT: Duration = Duration::from_secs(60);
/// Enough deliveries and acks (two cursor events each) for the queue to
/// write at least one cursor snapshot (due every 10,000 events).
const MESSAGES: usize = 6_000;

/// `conveyor_blocking_calls_on_reactor_total`, with the logged offenders.
fn blocking_calls(server: &Server) -> (String, Vec<String>) {
    let (status, body) = server.http_get("/metrics");
    assert_eq!(status, 200, "{body}");
    let count = body
        .lines()
        .find_map(|line| line.strip_prefix("conveyor_blocking_calls_on_reactor_total "))
        .expect("the reactor guard's counter is exported")
        .trim()
        .to_owned();
    let offenders = server
        .logs()
        .into_iter()
        .filter(|line| line.contains("blocking call ran on an async reactor thread"))
        .collect();
    (count, offenders)
}

/// After Kafka, AMQP, SQS, SNS and admin traffic (produce, fetch, commit,
/// publish, get, ack, nack, reject, dead-lettering, declares).
#[test]
fn no_blocking_call_runs_on_a_worker_thread_under_every_front_door() {
    let (_dir, server) = Server::start_in_tempdir();
    run_script(&server, "metrics/metrics_prometheus.py", &[]);
    let (count, offenders) = blocking_calls(&server);
    assert_eq!(count, "0", "blocking calls on worker threads: {offenders:#?}");
}

/// Publishes and acks enough messages on one durable queue for its cursor
/// snapshot (an fsync, a file write, a truncation of the log) to run.
#[test]
fn a_queue_snapshot_after_many_acks_runs_off_the_worker_threads() {
    let (_dir, server) = Server::start_in_tempdir();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(WAIT * 3, publish_and_ack_all(&url(&server)))
            .await
            .expect("the scenario finished in time");
    });
    let (count, offenders) = blocking_calls(&server);
    assert_eq!(count, "0", "blocking calls on worker threads: {offenders:#?}");
    let (_status, body) = server.http_get("/metrics");
    let ready = body
        .lines()
        .find(|line| line.starts_with("conveyor_queue_messages{") && line.contains("snapshotted") && line.contains("ready"))
        .map(|line| line.rsplit(' ').next().unwrap_or_default().to_owned());
    assert_eq!(ready.as_deref(), Some("0"), "every message was acked");
}

async fn publish_and_ack_all(url: &str) {
    let (connection, channel) = confirming_channel(url).await;
    declare(&channel, "snapshotted", true).await;
    let mut confirms = Vec::with_capacity(MESSAGES);
    for index in 0..MESSAGES {
        let confirm = channel
            .basic_publish(
                "".into(),
                "snapshotted".into(),
                BasicPublishOptions::default(),
                format!("m{index}").as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish");
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(confirm.await.expect("confirm").is_ack(), "a publish was not confirmed");
    }
    channel.basic_qos(500, BasicQosOptions::default()).await.expect("qos");
    let mut acked = consume_acking(&channel, "snapshotted").await;
    for _ in 0..MESSAGES {
        tokio::time::timeout(WAIT, acked.recv())
            .await
            .expect("a delivery in time")
            .expect("consumer open");
    }
    connection.close(200, "done".into()).await.expect("close");
}

/// The first use of a queue after a clean restart opens its logs (lazily):
/// from a publish, a `basic.get` and a `basic.consume`, each handled on a
/// worker thread, the open leaves the worker first, and each queue opens
/// once; the queues not used stay closed.
#[test]
fn a_queue_opened_by_its_first_use_after_a_restart_opens_off_the_worker_threads() {
    const QUEUES: [&str; 4] = ["first-publish", "first-get", "first-consume", "unused"];
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut server = Server::start(dir.path());
    runtime.block_on(async {
        let (connection, channel) = confirming_channel(&url(&server)).await;
        for queue in QUEUES {
            declare(&channel, queue, true).await;
            let persistent = BasicProperties::default().with_delivery_mode(2);
            assert!(publish_confirmed(&channel, "", queue, b"before", persistent).await);
        }
        connection.close(200, "done".into()).await.expect("close");
    });
    let (status, _) = server.terminate();
    assert!(status.success(), "a clean exit on SIGTERM: {status:?}");

    let server = Server::start(dir.path());
    assert_eq!(queues_opened(&server), 0, "a clean restart opens no queue");
    runtime.block_on(async {
        let (connection, channel) = confirming_channel(&url(&server)).await;
        let persistent = BasicProperties::default().with_delivery_mode(2);
        assert!(publish_confirmed(&channel, "", "first-publish", b"after", persistent).await);
        let got = channel
            .basic_get("first-get".into(), lapin::options::BasicGetOptions { no_ack: true })
            .await
            .expect("get")
            .expect("the message from before the restart");
        assert_eq!(got.delivery.data, b"before");
        let mut delivered = consume_acking(&channel, "first-consume").await;
        let data = tokio::time::timeout(WAIT, delivered.recv())
            .await
            .expect("a delivery in time")
            .expect("consumer open");
        assert_eq!(data, b"before");
        connection.close(200, "done".into()).await.expect("close");
    });
    let (count, offenders) = blocking_calls(&server);
    assert_eq!(count, "0", "blocking calls on worker threads: {offenders:#?}");
    assert_eq!(queues_opened(&server), 3, "the three queues used, not the unused one");
}

/// `conveyor_queues_opened`: queues whose logs are open.
fn queues_opened(server: &Server) -> usize {
    let (status, body) = server.http_get("/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|line| line.strip_prefix("conveyor_queues_opened "))
        .expect("the conveyor_queues_opened gauge")
        .trim()
        .parse()
        .expect("a count")
}
