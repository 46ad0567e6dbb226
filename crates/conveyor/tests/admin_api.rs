//! The REST admin API against a spawned `conveyor serve`: topics, consumer
//! groups (with a kafka-python member), queues and dead-letter redrive (with
//! lapin), connections (a pika client closed by an operator), the JSON error
//! shape, declaring and binding over REST alone, RabbitMQ definitions from
//! a real RabbitMQ node imported (and routing alike), and schemathesis
//! fuzzing the OpenAPI document for server errors and schema violations.

mod support;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use axum::http::{Method, Request};
use bytes::Bytes;
use conveyor_kafka::client::Client as KafkaClient;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kafka_protocol::messages::ApiVersionsRequest;
use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, BasicRejectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Value, json};
use support::lapin_client::{confirming_channel, declare, publish_confirmed, url};
use support::{Server, run_script, spawn_script};

/// Bounds every scenario.
const WAIT: Duration = Duration::from_secs(90);

/// A client for one broker's admin API.
struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Api {
    fn new(server: &Server) -> Api {
        Api {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{}/api/v1", server.http_addr),
        }
    }

    /// Sends a request; returns the status and the body as JSON (null when empty).
    async fn raw(&self, method: Method, path: &str, content_type: Option<&str>, body: &str) -> (u16, Value) {
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned()))).expect("request");
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .expect("answered in time")
            .expect("response");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|error| panic!("{status} body is not JSON ({error}): {bytes:?}"))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.raw(Method::GET, path, None, "").await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.raw(Method::DELETE, path, None, "").await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.raw(Method::POST, path, Some("application/json"), &body.to_string()).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.raw(Method::PUT, path, Some("application/json"), &body.to_string()).await
    }

    /// GET that must answer 200.
    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

/// Asserts the admin API's error shape and returns the message.
fn error_message(status: u16, body: &Value, expected_status: u16, expected_code: &str) -> String {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["error"]["code"], expected_code, "{body}");
    let message = body["error"]["message"].as_str().expect("an error message").to_owned();
    assert!(!message.is_empty());
    message
}

fn run(scenario: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async { tokio::time::timeout(WAIT, scenario).await.expect("the scenario finished in time") });
}

/// Polls `probe` until it returns `Some`, at most [`WAIT`].
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn partition_end_offsets(topic: &Value) -> Vec<u64> {
    topic["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|partition| partition["end_offset"].as_u64().expect("end offset"))
        .collect()
}

#[test]
fn a_topic_is_created_published_to_peeked_described_and_deleted() {
    let (_dir, server) = Server::start_in_tempdir();
    let api = Api::new(&server);
    run(async {
        // A fresh broker moves nothing: 0 messages a second, not -0.
        let fresh = api.ok("/overview").await;
        for rate in ["messages_in_per_second", "messages_out_per_second"] {
            let value = fresh[rate].as_f64().expect("a rate");
            assert!(value == 0.0 && value.is_sign_positive(), "{rate}: {fresh}");
        }
        let (status, created) = api
            .post(
                "/topics",
                json!({"name": "orders", "partitions": 3, "configs": {"retention.ms": "60000"}}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(partition_end_offsets(&created), vec![0, 0, 0]);
        let retention = created["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .find(|config| config["name"] == "retention.ms")
            .expect("retention.ms listed")
            .clone();
        assert_eq!(
            (retention["value"].as_str(), retention["is_default"].as_bool()),
            (Some("60000"), Some(false))
        );

        // Kafka's rules and messages for what it refuses.
        let (status, body) = api.post("/topics", json!({"name": "orders"})).await;
        assert!(error_message(status, &body, 409, "conflict").contains("already exists"));
        let (status, body) = api.post("/topics", json!({"name": "bad name!"})).await;
        error_message(status, &body, 400, "bad_request");
        let (status, body) = api.post("/topics", json!({"name": "t", "partitions": 0})).await;
        error_message(status, &body, 400, "bad_request");
        let (status, body) = api.post("/topics", json!({"name": "t", "configs": {"retention.ms": "soon"}})).await;
        error_message(status, &body, 400, "bad_request");

        for index in 0..2 {
            let (status, body) = api
                .post(
                    "/topics/orders/messages",
                    json!({"partition": 2, "key": "k", "value": format!("order {index}"), "headers": {"source": "rest"}}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            assert_eq!((body["partition"].as_u64(), body["offset"].as_u64()), (Some(2), Some(index)));
        }
        let (status, body) = api
            .post(
                "/topics/orders/messages",
                json!({"key": "//4=", "key_encoding": "base64", "value": "/w==", "value_encoding": "base64"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let keyed_partition = body["partition"].as_u64().expect("partition");

        let described = api.ok("/topics/orders").await;
        let mut expected = vec![0, 0, 2];
        expected[keyed_partition as usize] += 1;
        assert_eq!(partition_end_offsets(&described), expected);
        let listed = api.ok("/topics").await;
        assert_eq!(listed[0]["name"], "orders");
        assert_eq!(listed[0]["messages"], 3);

        let peeked = api.ok("/topics/orders/partitions/2/messages?offset=1&count=5").await;
        let messages = peeked["messages"].as_array().expect("messages");
        let last = messages.last().expect("a message");
        assert_eq!((last["value"].as_str(), last["key"].as_str()), (Some("order 1"), Some("k")));
        assert_eq!(
            last["headers"][0],
            json!({"key": "source", "value": "rest", "value_encoding": "utf8"})
        );
        let binary = api.ok(&format!("/topics/orders/partitions/{keyed_partition}/messages")).await;
        let binary = binary["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .find(|message| message["value_encoding"] == "base64")
            .expect("the binary message")
            .clone();
        assert_eq!((binary["value"].as_str(), binary["key"].as_str()), (Some("/w=="), Some("//4=")));

        let overview = api.ok("/overview").await;
        assert!(overview["messages_in_total"].as_u64().expect("messages in") >= 3, "{overview}");
        assert!(overview["bytes_in_total"].as_u64().expect("bytes in") > 0, "{overview}");
        assert!(overview["bytes_on_disk"].as_u64().expect("bytes on disk") > 0, "{overview}");

        let (status, body) = api.get("/topics/orders/partitions/9/messages").await;
        error_message(status, &body, 404, "not_found");
        let (status, _) = api.delete("/topics/orders").await;
        assert_eq!(status, 204);
        let (status, body) = api.get("/topics/orders").await;
        assert!(error_message(status, &body, 404, "not_found").contains("orders"));
        let overview = api.ok("/overview").await;
        assert_eq!((overview["topics"].as_u64(), overview["partitions"].as_u64()), (Some(0), Some(0)));
    });
}

#[test]
fn group_lag_follows_a_kafka_python_commit_and_offsets_reset_only_while_the_group_is_empty() {
    let (_dir, server) = Server::start_in_tempdir();
    let api = Api::new(&server);
    run(async {
        let (status, body) = api.post("/topics", json!({"name": "events", "partitions": 1})).await;
        assert_eq!(status, 201, "{body}");
        for index in 0..5 {
            let (status, body) = api
                .post("/topics/events/messages", json!({"value": format!("event {index}")}))
                .await;
            assert_eq!(status, 201, "{body}");
        }
    });
    run_script(&server, "admin/group_member_kafka_python.py", &["commit", "events", "readers", "3"]);
    run(async {
        let group = api.ok("/groups/readers").await;
        assert_eq!(group["state"], "Empty", "{group}");
        assert_eq!(group["offsets"][0]["committed_offset"], 3, "{group}");
        assert_eq!(
            (group["offsets"][0]["end_offset"].as_u64(), group["lag"].as_u64()),
            (Some(5), Some(2))
        );
        let listed = api.ok("/groups").await;
        let summary = listed
            .as_array()
            .expect("groups")
            .iter()
            .find(|group| group["group_id"] == "readers")
            .cloned();
        assert_eq!(summary.expect("listed")["lag"], 2);

        let (status, reset) = api.post("/groups/readers/reset-offsets", json!({"to": "earliest"})).await;
        assert_eq!(status, 200, "{reset}");
        assert_eq!(
            (
                reset["offsets"][0]["committed_offset"].as_i64(),
                reset["offsets"][0]["lag"].as_u64()
            ),
            (Some(0), Some(5))
        );
        let (_, reset) = api
            .post(
                "/groups/readers/reset-offsets",
                json!({"to": "offset", "offset": 4, "topic": "events"}),
            )
            .await;
        assert_eq!(reset["offsets"][0]["committed_offset"], 4, "{reset}");
        let (_, reset) = api
            .post("/groups/readers/reset-offsets", json!({"to": "timestamp", "timestamp_ms": 0}))
            .await;
        assert_eq!(reset["offsets"][0]["committed_offset"], 0, "{reset}");
        let (_, reset) = api.post("/groups/readers/reset-offsets", json!({"to": "latest"})).await;
        assert_eq!(api.ok("/groups/readers").await["lag"], 0, "{reset}");
        let (status, body) = api.post("/groups/readers/reset-offsets", json!({"to": "offset"})).await;
        error_message(status, &body, 400, "bad_request");
        let (status, body) = api.post("/groups/nobody/reset-offsets", json!({"to": "earliest"})).await;
        error_message(status, &body, 404, "not_found");
    });

    // With a member in the group, resetting and deleting are refused, as Kafka does.
    let mut member = spawn_script(&server, "admin/group_member_kafka_python.py", &["hold", "events", "readers"]);
    let stdout = member.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("assigned"), "the member joined");
    run(async {
        let group = eventually("a stable group with its member", || async {
            let group = api.ok("/groups/readers").await;
            (group["state"] == "Stable").then_some(group)
        })
        .await;
        let member = &group["members"][0];
        assert_eq!(member["client_id"], "admin-api-test", "{group}");
        assert_eq!(member["assignments"], json!([{"topic": "events", "partitions": [0]}]), "{group}");
        let (status, body) = api.post("/groups/readers/reset-offsets", json!({"to": "earliest"})).await;
        error_message(status, &body, 409, "conflict");
        let (status, body) = api.delete("/groups/readers").await;
        error_message(status, &body, 409, "conflict");
    });
    drop(member.stdin.take());
    let status = support::wait_bounded(&mut member, Duration::from_secs(30)).expect("the member left");
    assert!(status.success(), "the member script failed");
    run(async {
        eventually("the group to empty", || async {
            (api.ok("/groups/readers").await["state"] == "Empty").then_some(())
        })
        .await;
        let (status, _) = api.delete("/groups/readers").await;
        assert_eq!(status, 204);
        let (status, body) = api.get("/groups/readers").await;
        error_message(status, &body, 404, "not_found");
    });
}

#[test]
fn a_share_groups_id_keeps_the_share_group_rules_over_the_admin_api() {
    use kafka_protocol::messages::{GroupId, ShareGroupHeartbeatRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let (_dir, server) = Server::start_in_tempdir();
    let api = Api::new(&server);
    run(async {
        let (status, body) = api.post("/topics", json!({"name": "tasks", "partitions": 1})).await;
        assert_eq!(status, 201, "{body}");
        let mut kafka = KafkaClient::connect(&server.kafka_addr.to_string()).await.expect("connect");
        let join = ShareGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("crew")))
            .with_member_id(StrBytes::from_static_str("3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"))
            .with_member_epoch(0)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("tasks"))]));
        assert_eq!(kafka.send(&join, 1).await.expect("ShareGroupHeartbeat").error_code, 0);

        // A consumer group's offsets on a share group's id: refused, saying why.
        let (status, body) = api
            .post("/groups/crew/reset-offsets", json!({"to": "earliest", "topic": "tasks"}))
            .await;
        assert!(error_message(status, &body, 404, "not_found").contains("share group"), "{body}");
        let (status, body) = api
            .post(
                "/groups/crew/offsets",
                json!({"offsets": [{"topic": "tasks", "partition": 0, "offset": 0}]}),
            )
            .await;
        assert!(error_message(status, &body, 404, "not_found").contains("share group"), "{body}");

        // Deleting it waits until it is empty, as DeleteGroups does.
        let (status, body) = api.delete("/groups/crew").await;
        error_message(status, &body, 409, "conflict");
        let leave = join.with_member_epoch(-1).with_subscribed_topic_names(None);
        assert_eq!(kafka.send(&leave, 1).await.expect("leave").member_epoch, -1);
        let (status, body) = api.delete("/groups/crew").await;
        assert_eq!(status, 204, "{body}");
        // The id is free again: a consumer group may take it.
        let (status, body) = api
            .post(
                "/groups/crew/offsets",
                json!({"offsets": [{"topic": "tasks", "partition": 0, "offset": 0}]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    });
}

#[test]
fn share_groups_are_listed_and_described_with_their_type_members_epochs_and_start_offsets() {
    use kafka_protocol::messages::alter_share_group_offsets_request::{
        AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
    };
    use kafka_protocol::messages::{AlterShareGroupOffsetsRequest, GroupId, ShareGroupHeartbeatRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    const MEMBER: &str = "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    let (_dir, server) = Server::start_in_tempdir();
    let api = Api::new(&server);
    run(async {
        let (status, body) = api.post("/topics", json!({"name": "tasks", "partitions": 2})).await;
        assert_eq!(status, 201, "{body}");
        // A classic group (committed offsets only) beside the share group.
        let (status, body) = api
            .post(
                "/groups/billing/offsets",
                json!({"offsets": [{"topic": "tasks", "partition": 0, "offset": 0}]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let mut kafka = KafkaClient::connect(&server.kafka_addr.to_string()).await.expect("connect");
        let join = ShareGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("crew")))
            .with_member_id(StrBytes::from_static_str(MEMBER))
            .with_member_epoch(0)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("tasks"))]));
        assert_eq!(kafka.send(&join, 1).await.expect("ShareGroupHeartbeat").member_epoch, 1);

        let listed = api.ok("/groups").await;
        let summary = |id: &str| {
            let group = listed
                .as_array()
                .expect("groups")
                .iter()
                .find(|group| group["group_id"] == id)
                .cloned();
            group.map(|group| (group["group_type"].clone(), group["state"].clone(), group["members"].clone()))
        };
        assert_eq!(summary("crew"), Some((json!("share"), json!("Stable"), json!(1))), "{listed}");
        assert_eq!(summary("billing"), Some((json!("classic"), json!("Empty"), json!(0))), "{listed}");

        let crew = api.ok("/groups/crew").await;
        assert_eq!(
            (&crew["group_type"], &crew["state"], &crew["generation_id"]),
            (&json!("share"), &json!("Stable"), &json!(1))
        );
        assert_eq!(
            crew["members"],
            json!([{"member_id": MEMBER, "member_epoch": 1, "group_instance_id": null, "client_id": crew["members"][0]["client_id"],
                    "client_host": "/127.0.0.1", "assignments": [{"topic": "tasks", "partitions": [0, 1]}]}])
        );
        assert_eq!(crew["share_offsets"], json!([]), "no share-partition yet");
        assert_eq!(api.ok("/groups/billing").await["group_type"], "classic");

        // Empty, its start offset set: described with it.
        let leave = join.with_member_epoch(-1).with_subscribed_topic_names(None);
        assert_eq!(kafka.send(&leave, 1).await.expect("leave").member_epoch, -1);
        let alter = AlterShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("crew")))
            .with_topics(vec![
                AlterShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(TopicName(StrBytes::from_static_str("tasks")))
                    .with_partitions(vec![
                        AlterShareGroupOffsetsRequestPartition::default()
                            .with_partition_index(1)
                            .with_start_offset(0),
                    ]),
            ]);
        assert_eq!(kafka.send(&alter, 0).await.expect("AlterShareGroupOffsets").error_code, 0);
        let crew = api.ok("/groups/crew").await;
        assert_eq!((&crew["state"], &crew["members"]), (&json!("Empty"), &json!([])));
        assert_eq!(
            crew["share_offsets"],
            json!([{"topic": "tasks", "partition": 1, "start_offset": 0}])
        );
    });
}

#[test]
fn queues_declared_over_amqp_show_counts_peek_without_consuming_purge_and_redrive_dead_letters_back() {
    let (_dir, server) = Server::start_in_tempdir();
    let api = Api::new(&server);
    run(async {
        let (connection, channel) = confirming_channel(&url(&server)).await;
        declare(&channel, "work.dlq", true).await;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let mut arguments = FieldTable::default();
        arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        arguments.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString("work.dlq".into()));
        channel.queue_declare("work".into(), durable, arguments).await.expect("declare");
        for index in 0..3 {
            let job = format!("job {index}");
            assert!(publish_confirmed(&channel, "", "work", job.as_bytes(), BasicProperties::default()).await);
        }
        // Two jobs rejected: dead-lettered into work.dlq.
        for _ in 0..2 {
            let message = channel
                .basic_get("work".into(), BasicGetOptions::default())
                .await
                .expect("get")
                .expect("a message");
            message.reject(BasicRejectOptions { requeue: false }).await.expect("reject");
        }

        let dlq = eventually("two dead letters", || async {
            let dlq = api.ok("/queues/work.dlq").await;
            (dlq["messages_ready"] == 2).then_some(dlq)
        })
        .await;
        assert_eq!(dlq["dead_letter_sources"], json!(["work"]), "{dlq}");
        let work = api.ok("/queues/work").await;
        assert_eq!(
            (work["messages_ready"].as_u64(), work["messages_unacked"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(work["dead_letter_queues"], json!(["work.dlq"]), "{work}");
        assert_eq!(work["arguments"]["x-dead-letter-routing-key"], "work.dlq", "{work}");
        assert_eq!(work["messages_dead_lettered_total"], 2, "{work}");
        assert_eq!(work["messages_delayed"], 0, "{work}");
        // Rates come from the broker's 5-second samples of its counters.
        let rated = eventually("a publish rate on the queue and the overview", || async {
            let work = api.ok("/queues/work").await;
            let overview = api.ok("/overview").await;
            let positive = |value: &Value| value.as_f64().is_some_and(|rate| rate > 0.0);
            (positive(&work["publish_per_second"]) && positive(&overview["messages_in_per_second"])).then_some(overview)
        })
        .await;
        assert!(rated["messages_out_per_second"].as_f64().is_some(), "{rated}");
        let listed = api.ok("/queues").await;
        assert_eq!(listed.as_array().expect("queues").len(), 2);

        let peeked = api.ok("/queues/work.dlq/messages?count=10").await;
        let messages = peeked["messages"].as_array().expect("messages");
        let values: Vec<&str> = messages.iter().map(|message| message["value"].as_str().expect("value")).collect();
        assert_eq!(values, vec!["job 0", "job 1"]);
        let death_queue = messages[0]["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .find(|header| header["key"] == "conveyor.death-queue")
            .expect("the death header")
            .clone();
        assert_eq!(death_queue["value"], "work");
        assert_eq!(api.ok("/queues/work.dlq").await["messages_ready"], 2, "peeking consumed nothing");

        let (status, redriven) = api.post("/queues/work.dlq/redrive", json!({})).await;
        assert_eq!(status, 200, "{redriven}");
        assert_eq!(redriven, json!({"moved": 2, "skipped": 0, "destinations": {"work": 2}}));
        assert_eq!(api.ok("/queues/work.dlq").await["messages_ready"], 0);
        assert_eq!(api.ok("/queues/work").await["messages_ready"], 3);
        let redelivered = channel
            .basic_get("work".into(), BasicGetOptions { no_ack: true })
            .await
            .expect("get")
            .expect("a message");
        assert_eq!(redelivered.data, b"job 2");

        // To an explicit destination, and publishing over REST.
        let (status, body) = api.post("/queues/work/messages", json!({"value": "from rest"})).await;
        assert_eq!(status, 201, "{body}");
        let (status, routed) = api
            .post(
                "/exchanges/amq.default/messages",
                json!({"routing_key": "work.dlq", "value": "routed"}),
            )
            .await;
        assert_eq!(status, 200, "{routed}");
        assert_eq!(routed["queues"], json!(["work.dlq"]));
        assert_eq!(routed["routed"], true);
        // A publish no binding matches says it went nowhere.
        let (status, nowhere) = api
            .post(
                "/exchanges/amq.default/messages",
                json!({"routing_key": "no-such-queue", "value": "lost"}),
            )
            .await;
        assert_eq!(status, 200, "{nowhere}");
        assert_eq!(nowhere["routed"], false, "{nowhere}");
        let (status, body) = api
            .post("/queues/work.dlq/redrive", json!({"destination": "work", "max_messages": 5}))
            .await;
        assert_eq!((status, body["moved"].as_u64()), (200, Some(1)), "{body}");
        let (status, body) = api.post("/queues/work.dlq/redrive", json!({"destination": "missing"})).await;
        error_message(status, &body, 404, "not_found");

        let (status, purged) = api.post("/queues/work/purge", json!({})).await;
        assert_eq!((status, purged["purged"].as_u64()), (200, Some(4)), "{purged}");
        assert_eq!(api.ok("/overview").await["messages_ready"], 0);
        api.post("/queues/work/messages", json!({"value": "keep"})).await;
        let (status, body) = api.delete("/queues/work?if_empty=true").await;
        error_message(status, &body, 409, "conflict");
        let (status, body) = api.delete("/queues/work").await;
        assert_eq!((status, body["messages_deleted"].as_u64()), (200, Some(1)), "{body}");
        let (status, body) = api.get("/queues/work/messages").await;
        error_message(status, &body, 404, "not_found");

        let exchanges = api.ok("/exchanges").await;
        assert!(
            exchanges
                .as_array()
                .expect("exchanges")
                .iter()
                .any(|exchange| exchange["name"] == "amq.topic")
        );
        let default = api.ok("/exchanges/amq.default").await;
        assert_eq!((default["name"].as_str(), default["kind"].as_str()), (Some(""), Some("direct")));
        let (status, body) = api.get("/exchanges/nope").await;
        error_message(status, &body, 404, "not_found");
        connection.close(200, "done".into()).await.expect("close");
    });
}

#[test]
fn a_dlx_backed_queue_is_declared_bound_rejected_into_and_redriven_over_rest_alone() {
    let (_dir, server) = Server::start_in_tempdir();
    let api = Api::new(&server);
    run(async {
        // The dead-letter exchange and queue, bound.
        let (status, body) = api.put("/exchanges/dlx", json!({"type": "fanout"})).await;
        assert_eq!((status, body["kind"].as_str()), (201, Some("fanout")), "{body}");
        assert_eq!(
            api.put("/exchanges/dlx", json!({"type": "fanout"})).await.0,
            204,
            "the same declaration again"
        );
        let (status, body) = api.put("/exchanges/dlx", json!({"type": "direct"})).await;
        error_message(status, &body, 409, "conflict");
        let (status, body) = api.put("/exchanges/amq.mine", json!({"type": "direct"})).await;
        assert!((400..500).contains(&status), "a reserved name: {status} {body}");
        let (status, body) = api.put("/exchanges/odd", json!({"type": "x-unknown"})).await;
        error_message(status, &body, 400, "bad_request");
        assert_eq!(api.put("/queues/work.dlq", json!({})).await.0, 201);
        let binding = json!({"source": "dlx", "destination": "work.dlq", "destination_type": "queue", "routing_key": ""});
        let (status, body) = api.post("/bindings", binding.clone()).await;
        assert_eq!((status, body["destination"].as_str()), (201, Some("work.dlq")), "{body}");
        assert_eq!(api.post("/bindings", binding.clone()).await.0, 204, "bound already");
        let listed = api.ok("/bindings?vhost=/").await;
        assert!(
            listed
                .as_array()
                .expect("bindings")
                .iter()
                .any(|listed| listed["source"] == "dlx" && listed["destination"] == "work.dlq"),
            "{listed}"
        );
        let (status, body) = api.post("/bindings", json!({"source": "dlx", "destination": "missing"})).await;
        error_message(status, &body, 404, "not_found");

        // The queue: its arguments with the types RabbitMQ's management API gives JSON.
        let arguments = json!({"x-dead-letter-exchange": "dlx", "x-message-ttl": 60000, "x-max-length": 100});
        let (status, body) = api.put("/queues/work", json!({"arguments": arguments})).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(api.put("/queues/work", json!({"arguments": arguments})).await.0, 204);
        let (status, body) = api.put("/queues/work", json!({"arguments": {"x-max-length": 5}})).await;
        error_message(status, &body, 409, "conflict");
        let described = api.ok("/queues/work").await;
        assert_eq!(described["arguments"]["x-dead-letter-exchange"], "dlx", "{described}");
        let (status, body) = api.put("/queues/urgent", json!({"arguments": {"x-max-priority": "9"}})).await;
        let message = error_message(status, &body, 400, "bad_request");
        assert_eq!(
            message, "invalid arg 'x-max-priority' for queue 'urgent' in vhost '/': \"expected integer, got longstr\"",
            "the AMQP door's words"
        );
        let (status, body) = api.put("/queues/urgent", json!({"arguments": {"x-overflow": "sideways"}})).await;
        error_message(status, &body, 400, "bad_request");
        let (status, body) = api.put("/queues/amq.mine", json!({})).await;
        error_message(status, &body, 403, "forbidden");
        let (status, body) = api.put("/queues/extra", json!({"durable": true, "colour": "red"})).await;
        assert!((400..500).contains(&status), "an unknown field: {status} {body}");

        // Publish, reject without requeue (dead-lettered), redrive back.
        assert_eq!(api.post("/queues/work/messages", json!({"value": "job"})).await.0, 201);
        let (status, got) = api
            .post("/queues/work/get", json!({"count": 5, "ackmode": "reject_requeue_false"}))
            .await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["messages"].as_array().map(Vec::len), Some(1), "{got}");
        assert_eq!(got["messages"][0]["value"], "job");
        assert_eq!(api.ok("/queues/work").await["messages_ready"], 0);
        assert_eq!(api.ok("/queues/work.dlq").await["messages_ready"], 1, "dead-lettered through dlx");
        let (status, redriven) = api.post("/queues/work.dlq/redrive", json!({})).await;
        assert_eq!(status, 200, "{redriven}");
        assert_eq!(redriven, json!({"moved": 1, "skipped": 0, "destinations": {"work": 1}}));
        let (status, got) = api.post("/queues/work/get", json!({"ackmode": "ack_requeue_false"})).await;
        assert_eq!((status, got["messages"][0]["value"].as_str()), (200, Some("job")), "{got}");
        assert_eq!(api.ok("/queues/work").await["messages_ready"], 0, "acknowledged");

        // Unbind, delete.
        let text = binding.to_string();
        assert_eq!(api.raw(Method::DELETE, "/bindings", Some("application/json"), &text).await.0, 204);
        let (status, body) = api.raw(Method::DELETE, "/bindings", Some("application/json"), &text).await;
        error_message(status, &body, 404, "not_found");
        let (status, body) = api.delete("/exchanges/amq.topic").await;
        error_message(status, &body, 409, "conflict");
        assert_eq!(api.delete("/exchanges/dlx").await.0, 204);
        let (status, body) = api.get("/exchanges/dlx").await;
        error_message(status, &body, 404, "not_found");

        // In another vhost: the same names, apart; listings filter by vhost.
        assert_eq!(api.put("/vhosts/staging", json!({})).await.0, 201);
        let (status, body) = api.put("/queues/work?vhost=staging", json!({"durable": false})).await;
        assert_eq!((status, body["vhost"].as_str()), (201, Some("staging")), "{body}");
        let staging = api.ok("/queues?vhost=staging").await;
        let names: Vec<(&str, &str)> = staging
            .as_array()
            .expect("queues")
            .iter()
            .map(|queue| (queue["vhost"].as_str().expect("vhost"), queue["name"].as_str().expect("name")))
            .collect();
        assert_eq!(names, vec![("staging", "work")]);
        let (status, body) = api.put("/queues/work?vhost=nowhere", json!({})).await;
        error_message(status, &body, 404, "not_found");
    });
}

/// Needs Debian's rabbitmq-server (`./scripts/test` installs it as root);
/// the script says what is missing otherwise.
#[test]
fn definitions_exported_from_a_real_rabbitmq_node_import_alike_and_route_the_same() {
    let (_dir, server) = Server::start_in_tempdir();
    let binary = support::binary();
    let output = run_script(
        &server,
        "admin/definitions_rabbitmq.py",
        &[binary.to_str().expect("the binary's path is UTF-8")],
    );
    assert!(output.stdout.contains("routed alike"), "{}", output.stdout);
}

/// The listed connection of `protocol` whose client is `client`, if any.
fn connection_of(listed: &Value, protocol: &str, client: &str) -> Option<Value> {
    listed
        .as_array()
        .expect("connections")
        .iter()
        .find(|connection| connection["protocol"] == protocol && connection["client"] == client)
        .cloned()
}

#[test]
fn connections_are_listed_with_client_and_user_and_an_operator_can_close_them() {
    let (_dir, server) = Server::start_in_tempdir();
    let api = Api::new(&server);
    let mut pika = spawn_script(&server, "admin/connection_closed_pika.py", &[]);
    let mut lines = BufReader::new(pika.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("open"), "pika connected");
    let kafka_addr = server.kafka_addr;
    run(async {
        // A Kafka connection is named by its requests' client id, so it needs one request.
        let mut kafka = KafkaClient::connect(kafka_addr).await.expect("connect");
        let versions = kafka.send(&ApiVersionsRequest::default(), 0).await.expect("ApiVersions");
        assert_eq!(versions.error_code, 0);
        let started_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;

        let listed = eventually("the pika connection with its channel", || async {
            let listed = api.ok("/connections").await;
            connection_of(&listed, "amqp", "admin-api-pika")
                .filter(|amqp| amqp["channels"] == 1)
                .map(|_| listed)
        })
        .await;
        let amqp = connection_of(&listed, "amqp", "admin-api-pika").expect("amqp listed");
        assert_eq!(amqp["user"], "guest", "{amqp}");
        let address: std::net::SocketAddr = amqp["address"].as_str().expect("address").parse().expect("ip:port");
        assert!(address.ip().is_loopback() && address.port() > 0, "{amqp}");
        let connected_at_ms = amqp["connected_at_ms"].as_u64().expect("connected_at_ms");
        assert!(
            connected_at_ms <= started_ms + 1000 && connected_at_ms + 120_000 > started_ms,
            "{amqp}"
        );
        let kafka_listed = connection_of(&listed, "kafka", "conveyor-client").expect("kafka listed");
        assert_eq!(
            (kafka_listed["user"].clone(), kafka_listed["channels"].as_u64()),
            (Value::Null, Some(0))
        );
        assert_ne!(kafka_listed["id"], amqp["id"]);
        let overview = api.ok("/overview").await;
        assert!(overview["connections"]["amqp"].as_i64() >= Some(1), "{overview}");

        // Unknown and malformed ids.
        let (status, body) = api.delete("/connections/987654321").await;
        error_message(status, &body, 404, "not_found");
        let (status, body) = api.delete("/connections/not-a-number").await;
        error_message(status, &body, 400, "bad_request");
        let (status, body) = api.delete("/connections/-1").await;
        error_message(status, &body, 400, "bad_request");

        let amqp_id = amqp["id"].as_u64().expect("id");
        let (status, body) = api.delete(&format!("/connections/{amqp_id}")).await;
        assert_eq!((status, body), (204, Value::Null));
        eventually("the closed AMQP connection to leave the list", || async {
            let listed = api.ok("/connections").await;
            let ids: Vec<u64> = listed.as_array().expect("list").iter().filter_map(|c| c["id"].as_u64()).collect();
            (!ids.contains(&amqp_id)).then_some(())
        })
        .await;

        // A Kafka connection is dropped: its next request finds the socket closed.
        let kafka_id = kafka_listed["id"].as_u64().expect("id");
        let (status, _) = api.delete(&format!("/connections/{kafka_id}")).await;
        assert_eq!(status, 204);
        eventually("the Kafka connection to be dropped", || async {
            let listed = api.ok("/connections").await;
            connection_of(&listed, "kafka", "conveyor-client").is_none().then_some(())
        })
        .await;
        assert!(kafka.send(&ApiVersionsRequest::default(), 0).await.is_err(), "the socket is closed");
    });
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("closed 320"), "pika saw 320");
    let status = support::wait_bounded(&mut pika, Duration::from_secs(30)).expect("pika exited");
    assert!(status.success(), "the pika script failed");
}

#[test]
fn every_error_answers_with_the_json_error_shape() {
    let (_dir, server) = Server::start_in_tempdir();
    let api = Api::new(&server);
    run(async {
        let (status, body) = api.raw(Method::POST, "/topics", Some("application/json"), "{\"name\": ").await;
        assert!(error_message(status, &body, 400, "bad_request").contains("JSON"));
        let (status, body) = api.raw(Method::POST, "/topics", Some("application/json"), "{\"name\": 7}").await;
        error_message(status, &body, 422, "unprocessable_entity");
        let (status, body) = api.raw(Method::POST, "/topics", None, "{\"name\": \"x\"}").await;
        error_message(status, &body, 415, "unsupported_media_type");
        let (status, body) = api.get("/no/such/thing").await;
        error_message(status, &body, 404, "not_found");
        let (status, body) = api.raw(Method::POST, "/no/such/thing", Some("application/json"), "{}").await;
        error_message(status, &body, 404, "not_found");
        let (status, body) = api.raw(Method::PUT, "/topics", None, "").await;
        error_message(status, &body, 405, "method_not_allowed");
        let (status, body) = api.get("/topics/missing").await;
        error_message(status, &body, 404, "not_found");
        let (status, body) = api.get("/topics/missing/partitions/x/messages").await;
        error_message(status, &body, 400, "bad_request");
        let (status, body) = api.get("/queues/missing").await;
        error_message(status, &body, 404, "not_found");
        let (status, body) = api.get("/groups/missing").await;
        error_message(status, &body, 404, "not_found");
        let (status, body) = api.delete("/groups/missing").await;
        error_message(status, &body, 404, "not_found");
        let (status, body) = api.get("/queues/missing/messages?count=lots").await;
        error_message(status, &body, 400, "bad_request");
        let (status, body) = api.post("/topics", json!({"name": "t", "unknown": 1})).await;
        error_message(status, &body, 422, "unprocessable_entity");
        api.post("/topics", json!({"name": "t"})).await;
        let (status, body) = api.post("/topics", json!({"name": "t"})).await;
        error_message(status, &body, 409, "conflict");
        let (status, body) = api.get("/topics/t/partitions/0/messages?count=0").await;
        error_message(status, &body, 400, "bad_request");

        let document = api.ok("/openapi.json").await;
        assert!(document["openapi"].as_str().expect("version").starts_with("3."));
        for path in [
            "/api/v1/topics",
            "/api/v1/groups/{group_id}/reset-offsets",
            "/api/v1/queues/{name}/redrive",
            "/api/v1/connections",
            "/api/v1/connections/{id}",
        ] {
            assert!(document["paths"].get(path).is_some(), "{path} is documented");
        }
        assert!(document["components"]["schemas"].get("ErrorBody").is_some());
    });
}

#[test]
fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let (_dir, server) = Server::start_in_tempdir();
    let api = Api::new(&server);
    // Something to find, so describe and peek paths have real answers too.
    run(async {
        api.post("/topics", json!({"name": "fuzzed", "partitions": 2})).await;
        api.post("/topics/fuzzed/messages", json!({"value": "hello"})).await;
    });
    run_script(&server, "admin/schemathesis_run.py", &["15"]);
}
