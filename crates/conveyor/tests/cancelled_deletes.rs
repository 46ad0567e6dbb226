//! Deletes whose client goes away mid-request (an HTTP client that hangs up
//! after sending `DELETE`, a Kafka client that closes its connection right
//! after sending DeleteTopics) against a real `conveyor serve`: every topic
//! and queue is afterwards, and after a restart, either fully there (listed
//! and taking writes) or fully gone (not listed, refusing writes, its files
//! removed), never half-deleted.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conveyor_kafka::client::Client;
use conveyor_log::record::{BatchBuilder, Record};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{DeleteTopicsRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;
use support::Server;

/// Topics (and queues) deleted per test: each a chance to drop a request
/// between its durable event and the views that show it.
const ROUNDS: usize = 12;
/// How long the deletes get to finish once their clients went away.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

/// One HTTP/1.1 request on a fresh connection; the status and JSON body.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let (status, response) = support::http_exchange(addr, method, path, headers, body);
    (status, serde_json::from_str(support::body_of(&response)).unwrap_or(Value::Null))
}

/// Sends a request and hangs up at once, without reading the answer.
fn send_and_hang_up(addr: SocketAddr, method: &str, path: &str) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .write_all(support::http_request_bytes(addr, method, path, &[], "").as_bytes())
        .expect("write request");
    drop(stream);
}

/// A broker that does not create topics on produce, so a write to a deleted
/// topic is refused rather than creating a new one.
fn start(dir: &Path) -> Server {
    let config = dir.join("conveyor.toml");
    std::fs::write(&config, "[topics]\nauto_create = false\n").expect("write config");
    let data = dir.join("data");
    Server::start_with(&data, &["--config", config.to_str().expect("utf-8 path")], &[])
}

/// Checks what is left is whole, stops the broker and starts it again on
/// the same data: exactly that is back, whole.
async fn assert_whole_across_a_restart(
    dir: &Path,
    mut server: Server,
    topics: &BTreeMap<String, String>,
    queues: &BTreeMap<String, String>,
) {
    let there = assert_whole(&server, topics, queues).await;
    let (status, _) = server.terminate();
    assert!(status.success());
    let server = start(dir);
    assert_eq!(
        assert_whole(&server, topics, queues).await,
        there,
        "a restart brings back exactly what was there"
    );
}

fn create_topics_and_queues(server: &Server) {
    for index in 0..ROUNDS {
        let body = format!(r#"{{"name":"t{index}","partitions":2}}"#);
        let (status, answer) = http(
            server.http_addr,
            "POST",
            "/api/v1/topics",
            &[("Content-Type", "application/json")],
            &body,
        );
        assert_eq!(status, 201, "{answer}");
        let sqs = [
            ("X-Amz-Target", "AmazonSQS.CreateQueue"),
            ("Content-Type", "application/x-amz-json-1.0"),
        ];
        let (status, answer) = http(server.http_addr, "POST", "/", &sqs, &format!(r#"{{"QueueName":"q{index}"}}"#));
        assert_eq!(status, 200, "{answer}");
    }
}

fn batch(value: &str) -> Bytes {
    let mut builder = BatchBuilder::new(1_700_000_000_000);
    builder.push(Record::new(None, Some(value.as_bytes().to_vec())));
    builder.build()
}

/// Whether a produce to partition 0 of `topic` is acknowledged.
async fn produce_acknowledged(client: &mut Client, topic: &str) -> bool {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default().with_index(0).with_records(Some(batch("probe"))),
                ]),
        ]);
    let response = client.send(&request, 9).await.expect("produce");
    response.responses[0].partition_responses[0].error_code == 0
}

/// Each topic's id while it exists (its files live in `topics/<id>`).
fn topic_ids(server: &Server) -> BTreeMap<String, String> {
    let (status, topics) = http(server.http_addr, "GET", "/api/v1/topics", &[], "");
    assert_eq!(status, 200);
    topics
        .as_array()
        .expect("a list")
        .iter()
        .map(|topic| {
            (
                topic["name"].as_str().unwrap_or_default().to_owned(),
                topic["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn queue_ids(server: &Server) -> BTreeMap<String, String> {
    (0..ROUNDS)
        .filter_map(|index| {
            let (status, queue) = http(server.http_addr, "GET", &format!("/api/v1/queues/q{index}"), &[], "");
            (status == 200).then(|| (format!("q{index}"), queue["id"].as_str().unwrap_or_default().to_owned()))
        })
        .collect()
}

/// Waits (bounded) until `probe` holds.
fn eventually(what: &str, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while Instant::now() < deadline {
        if probe() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("not reached within {SETTLE_TIMEOUT:?}: {what}");
    false
}

/// Checks that every topic and queue is fully there or fully gone, given
/// the ids they had before the deletes; returns the names still there.
async fn assert_whole(server: &Server, topics_before: &BTreeMap<String, String>, queues_before: &BTreeMap<String, String>) -> Vec<String> {
    let topics_now = topic_ids(server);
    let queues_now = queue_ids(server);
    let mut client = Client::connect(server.kafka_addr).await.expect("connect");
    let data = server.data_dir.clone();
    let mut there = Vec::new();
    for (name, id) in topics_before {
        let listed = topics_now.get(name) == Some(id);
        assert_eq!(
            produce_acknowledged(&mut client, name).await,
            listed,
            "topic {name}: listed {listed}, writes must agree"
        );
        let files = data.join("topics").join(id);
        if listed {
            assert!(files.exists(), "topic {name} is listed without its files");
            there.push(name.clone());
        } else {
            assert!(eventually(&format!("{} is removed", files.display()), || !files.exists()));
        }
    }
    for (name, id) in queues_before {
        let listed = queues_now.get(name) == Some(id);
        let body = r#"{"value":"probe"}"#;
        let (status, answer) = http(
            server.http_addr,
            "POST",
            &format!("/api/v1/queues/{name}/messages"),
            &[("Content-Type", "application/json")],
            body,
        );
        assert_eq!(
            (200..300).contains(&status),
            listed,
            "queue {name}: listed {listed}, publish answered {status} {answer}"
        );
        let files = data.join("queues").join(id);
        if listed {
            assert!(files.exists(), "queue {name} is listed without its files");
            there.push(name.clone());
        } else {
            assert!(eventually(&format!("{} is removed", files.display()), || !files.exists()));
        }
    }
    there
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_whose_http_client_hangs_up_leave_each_topic_and_queue_whole_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path());
    create_topics_and_queues(&server);
    let (topics, queues) = (topic_ids(&server), queue_ids(&server));
    assert_eq!((topics.len(), queues.len()), (ROUNDS, ROUNDS));
    for index in 0..ROUNDS {
        send_and_hang_up(server.http_addr, "DELETE", &format!("/api/v1/topics/t{index}"));
        send_and_hang_up(server.http_addr, "DELETE", &format!("/api/v1/queues/q{index}"));
    }
    // A delete the server took up finishes; one it dropped before it began
    // leaves its topic or queue whole. Either way the listing settles.
    eventually("the deletes are done", || {
        topic_ids(&server).is_empty() && queue_ids(&server).is_empty()
    });
    assert_whole_across_a_restart(dir.path(), server, &topics, &queues).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_topics_whose_kafka_connection_closes_leaves_each_topic_whole_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path());
    create_topics_and_queues(&server);
    let (topics, queues) = (topic_ids(&server), queue_ids(&server));
    for round in 0..ROUNDS / 4 {
        // Several topics per request: the connection may close between them.
        let names = (round * 4..round * 4 + 4)
            .map(|index| TopicName(StrBytes::from_string(format!("t{index}"))))
            .collect();
        let mut client = Client::connect(server.kafka_addr).await.expect("connect");
        client
            .write(&DeleteTopicsRequest::default().with_topic_names(names).with_timeout_ms(30_000), 4)
            .await
            .expect("send DeleteTopics");
        drop(client);
    }
    eventually("the deletes are done", || topic_ids(&server).is_empty());
    assert_whole_across_a_restart(dir.path(), server, &topics, &queues).await;
}
