//! Three real `conveyor serve` processes as one cluster on loopback: every
//! node reports healthy once the metadata group has a leader; what is
//! declared on one node (an exchange, a queue, a binding; a user) is there
//! on the others; the survivors of a leader killed with SIGKILL elect
//! another and take new declarations; the killed node, restarted, catches
//! up. A Kafka topic with replication factor 3 keeps every record a
//! confluent-kafka producer had acknowledged (acks=all) when the leader of
//! its partition 0 is SIGKILLed, and the restarted node's copy of every
//! partition catches up with the leader's. A transactional producer's
//! markers and the admin API's publishes, sent to any node, go through the
//! partition's group too, so a new leader serves exactly the committed
//! records. A partition's leader cut off from both other nodes (a proxy
//! between the nodes) acknowledges nothing while the majority elects a
//! leader of its own and goes on: a confluent-kafka produce to it gets
//! REQUEST_TIMED_OUT after the request's timeout, an admin API publish
//! 504 after its bound; healed, its copy becomes the majority's, every
//! acknowledged record once, gap-free. An acks=all produce while fewer replicas are in sync than the
//! topic's min.insync.replicas is refused with NOT_ENOUGH_REPLICAS and
//! writes nothing. Every node answers Kafka clients the one cluster id the
//! first metadata leader set, also after a restart, and producer ids
//! handed out by different nodes, before and after a restart, never
//! collide. Every node, replica of a partition or not, answers Metadata
//! for it as its leader reports it (leader, epoch, replicas, ISR), and
//! operators see every partition's group in `/api/v1/cluster`, `conveyor
//! cluster status` and `/metrics`. A fourth node joins (`conveyor cluster
//! add`) and one of the first three leaves (`conveyor cluster remove`)
//! while a confluent-kafka producer goes on without a failed record or a
//! pause. The metadata leader coordinates every consumer group and
//! transactional id, whose state is in the metadata group: when it is
//! SIGKILLed a consumer of the group resumes, through a survivor, exactly
//! at the committed offsets, and a transaction in flight ends through the
//! next coordinator (a read_committed consumer sees each committed record
//! once and nothing aborted). A removed node's partition replicas move to
//! the other nodes and catch up, so the partitions keep a quorum when one
//! more of their first replicas dies. Every wait is a bounded poll;
//! every process is stopped by its PID.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use conveyor_kafka::client::Client;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{CreateTopicsRequest, DescribeClusterRequest, InitProducerIdRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use support::{ClusterNodes, Server, eventually, expect_script_ok, http_send, spawn_script};

const WAIT: Duration = Duration::from_secs(30);

fn cluster_status(server: &Server) -> serde_json::Value {
    let (status, body) = server.http_get("/api/v1/cluster");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("cluster status JSON")
}

fn leader_of(server: &Server) -> Option<u64> {
    let (status, body) = server.http_get("/api/v1/cluster");
    if status != 200 {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&body).ok()?["leader_id"].as_u64()
}

fn has(server: &Server, path: &str) -> bool {
    server.http_get(path).0 == 200
}

fn declare(server: &Server, method: &str, path: &str, json: &str) {
    let (status, body) = http_send(server.http_addr, method, path, json);
    assert!((200..300).contains(&status), "{method} {path}: {status} {body}");
}

#[test]
fn the_catalog_is_replicated_across_three_nodes_and_survives_a_killed_leader() {
    let mut cluster = ClusterNodes::start(3);
    assert!(
        eventually(WAIT, || (1..=3).all(|id| cluster.node(id).http_get("/health").0 == 200)),
        "every node healthy: {:?}",
        (1..=3).map(|id| cluster.node(id).http_get("/health")).collect::<Vec<_>>()
    );
    assert!(
        eventually(WAIT, || {
            let status = cluster_status(cluster.node(1));
            status["members"]
                .as_array()
                .is_some_and(|members| members.len() == 3 && members.iter().all(|member| member["http_addr"].is_string()))
        }),
        "every member advertises its doors: {}",
        cluster_status(cluster.node(1))
    );
    let members = cluster_status(cluster.node(1))["members"].clone();
    for id in 1..=3u64 {
        let member = members
            .as_array()
            .and_then(|all| all.iter().find(|member| member["node_id"] == id))
            .expect("member");
        assert_eq!(
            member["http_addr"].as_str(),
            Some(cluster.node(id as usize).http_addr.to_string().as_str()),
            "node {id} advertises its own HTTP address"
        );
    }

    // Declared on node 1 and node 2, seen on node 3.
    declare(cluster.node(1), "PUT", "/api/v1/exchanges/orders", r#"{"type":"direct"}"#);
    declare(cluster.node(1), "PUT", "/api/v1/queues/orders.eu", r#"{"durable":true}"#);
    declare(
        cluster.node(1),
        "POST",
        "/api/v1/bindings",
        r#"{"source":"orders","destination":"orders.eu","routing_key":"eu"}"#,
    );
    declare(
        cluster.node(2),
        "PUT",
        "/api/v1/users/alice",
        r#"{"password":"s3cret","tags":["monitoring"]}"#,
    );
    let third = cluster.node(3);
    assert!(
        eventually(WAIT, || {
            has(third, "/api/v1/exchanges/orders") && has(third, "/api/v1/queues/orders.eu") && has(third, "/api/v1/users/alice")
        }),
        "node 3 sees what nodes 1 and 2 declared"
    );
    let (_, bindings) = third.http_get("/api/v1/bindings");
    assert!(bindings.contains("orders.eu") && bindings.contains("\"eu\""), "{bindings}");

    // The leader dies; the two others elect one of them and go on.
    let leader = leader_of(cluster.node(1)).expect("a leader") as usize;
    cluster.kill(leader);
    let survivors = cluster.running();
    assert!(
        eventually(WAIT, || survivors
            .iter()
            .all(|id| leader_of(cluster.node(*id)).is_some_and(|new| new as usize != leader))),
        "the survivors elect a new leader"
    );
    declare(cluster.node(survivors[0]), "PUT", "/api/v1/queues/invoices", r#"{"durable":true}"#);
    assert!(eventually(WAIT, || has(cluster.node(survivors[1]), "/api/v1/queues/invoices")));

    // The killed node comes back on its data and catches up.
    cluster.restart(leader);
    let returned = cluster.node(leader);
    assert!(
        eventually(WAIT, || has(returned, "/api/v1/queues/invoices")
            && returned.http_get("/health").0 == 200),
        "the returning node sees what was declared while it was down"
    );
    assert!(has(returned, "/api/v1/queues/orders.eu") && has(returned, "/api/v1/users/alice"));
}

#[test]
fn a_lone_node_of_a_cluster_is_unhealthy_until_a_majority_elects_a_leader() {
    let peers = format!(
        "1=127.0.0.1:{},2=127.0.0.1:{},3=127.0.0.1:{}",
        support::free_port(),
        support::free_port(),
        support::free_port()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(dir.path(), &["--node-id", "1", "--peers", &peers], &[]);
    let (status, body) = server.http_get("/health");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no metadata leader"), "{body}");
    let status = cluster_status(&server);
    assert_eq!(status["node_id"], 1);
    assert!(status["leader_id"].is_null(), "{status}");
}

/// One node's own copy of a partition: (offset, timestamp, key, value)
/// of each record, read through the admin API (which reads the local log,
/// leader or not).
fn local_records(server: &Server, topic: &str, partition: u32) -> Vec<(u64, i64, String, String)> {
    let (status, body) = server.http_get(&format!(
        "/api/v1/topics/{topic}/partitions/{partition}/messages?offset=0&count=1000"
    ));
    if status != 200 {
        return Vec::new();
    }
    let peeked: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    peeked["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|message| {
                    (
                        message["offset"].as_u64().unwrap_or(u64::MAX),
                        message["timestamp_ms"].as_i64().unwrap_or(-1),
                        message["key"].as_str().unwrap_or_default().to_owned(),
                        message["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until every node is healthy and knows every member's Kafka door;
/// answers the bootstrap list of every node's Kafka address.
fn kafka_ready(cluster: &ClusterNodes) -> String {
    assert!(
        eventually(WAIT, || cluster.running().into_iter().all(|id| {
            cluster.node(id).http_get("/health").0 == 200
                && cluster_status(cluster.node(id))["members"].as_array().is_some_and(|members| {
                    members.len() == cluster.running().len() && members.iter().all(|member| member["kafka_addr"].is_string())
                })
        })),
        "every node healthy and every member's Kafka door known everywhere"
    );
    cluster
        .running()
        .into_iter()
        .map(|id| cluster.node(id).kafka_addr.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads the script's first line and checks it is `expected`.
fn first_line_is(client: &mut std::process::Child, lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>, expected: &str) {
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    if first != expected {
        let _ = client.kill();
        let _ = client.wait();
        panic!("expected `{expected}` first, got {first:?}");
    }
}

/// Reads the script's first line, `leader N`, and answers N.
fn leader_line(client: &mut std::process::Child, lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>) -> usize {
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let Some(leader) = first.strip_prefix("leader ").and_then(|id| id.parse::<usize>().ok()) else {
        let _ = client.kill();
        let _ = client.wait();
        panic!("expected `leader N` first, got {first:?}");
    };
    assert!((1..=3).contains(&leader), "{first}");
    leader
}

#[test]
fn a_replicated_topic_loses_no_acknowledged_record_when_its_leader_is_killed() {
    let mut cluster = ClusterNodes::start(3);
    let bootstrap = kafka_ready(&cluster);
    let topic = "replicated-orders";
    let mut client = spawn_script(cluster.node(1), "kafka/cluster_failover_confluent.py", &[&bootstrap, topic]);
    let stdout = client.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let leader = leader_line(&mut client, &mut lines);

    // The leader of partition 0 dies while the producer goes on.
    cluster.kill(leader);
    writeln!(client.stdin.as_mut().expect("stdin"), "killed").expect("tell the script");
    let errors = expect_script_ok(&mut client, lines);
    let ends: Vec<(u32, u64)> = errors
        .iter()
        .filter_map(|line| {
            let mut words = line.strip_prefix("end ")?.split_whitespace();
            Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
        })
        .collect();
    assert_eq!(ends.len(), 3, "one end per partition: {ends:?}");

    // The killed node comes back and its copy of every partition becomes
    // the leader's, record for record.
    cluster.restart(leader);
    let survivor = *cluster.running().iter().find(|id| **id != leader).expect("a survivor");
    assert!(
        eventually(Duration::from_secs(60), || ends.iter().all(|(partition, end)| {
            let returned = local_records(cluster.node(leader), topic, *partition);
            returned.len() as u64 == *end && returned == local_records(cluster.node(survivor), topic, *partition)
        })),
        "the restarted node caught up: {:?} vs {:?}",
        local_records(cluster.node(leader), topic, 0).len(),
        local_records(cluster.node(survivor), topic, 0).len()
    );
}

#[test]
fn transaction_markers_are_replicated_so_a_new_leader_serves_exactly_the_committed_records() {
    let mut cluster = ClusterNodes::start(3);
    let bootstrap = kafka_ready(&cluster);
    let topic = "replicated-payments";
    let mut client = spawn_script(cluster.node(1), "kafka/cluster_transactions_confluent.py", &[&bootstrap, topic]);
    let stdout = client.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let leader = leader_line(&mut client, &mut lines);

    // The leader dies after two commits and an abort: the survivors hold
    // the markers too, so the new leader's last stable offset is past them.
    cluster.kill(leader);
    writeln!(client.stdin.as_mut().expect("stdin"), "killed").expect("tell the script");
    expect_script_ok(&mut client, lines);

    // A publish through the admin API on either survivor, led there or
    // not, goes through the partition's group: both copies get both
    // records, at the same offsets, after the 103 the producer wrote.
    let survivors = cluster.running();
    for (index, id) in survivors.iter().enumerate() {
        let json = format!(r#"{{"value":"admin-{index}","partition":0}}"#);
        let mut published = (0, String::new());
        let accepted = eventually(WAIT, || {
            published = http_send(
                cluster.node(*id).http_addr,
                "POST",
                &format!("/api/v1/topics/{topic}/messages"),
                &json,
            );
            published.0 == 201
        });
        assert!(accepted, "publish on node {id}: {published:?}");
    }
    let tail = |id: usize| -> Vec<(u64, String)> {
        local_records(cluster.node(id), topic, 0)
            .into_iter()
            .filter(|(_, _, _, value)| value.starts_with("admin-"))
            .map(|(offset, _, _, value)| (offset, value))
            .collect()
    };
    let expected = vec![(103, "admin-0".to_owned()), (104, "admin-1".to_owned())];
    assert!(
        eventually(WAIT, || survivors.iter().all(|id| tail(*id) == expected)),
        "both survivors hold both admin publishes at 103 and 104: {:?}",
        survivors.iter().map(|id| tail(*id)).collect::<Vec<_>>()
    );
}

#[test]
fn acks_all_below_min_insync_replicas_is_refused_with_not_enough_replicas_and_writes_nothing() {
    let mut cluster = ClusterNodes::start(3);
    let bootstrap = kafka_ready(&cluster);
    let mut client = spawn_script(cluster.node(1), "kafka/cluster_min_insync_confluent.py", &[&bootstrap, "insync"]);
    let stdout = client.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let leaders: Vec<usize> = first
        .strip_prefix("leaders ")
        .map(|rest| rest.split_whitespace().filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default();
    if leaders.len() != 2 {
        let _ = client.kill();
        let _ = client.wait();
        panic!("expected `leaders A B` first, got {first:?}");
    }
    let (leader_all3, leader_all2) = (leaders[0], leaders[1]);

    // One node that leads neither topic stops: two replicas stay in sync.
    let first_down = (1..=3)
        .find(|id| *id != leader_all3 && *id != leader_all2)
        .expect("a node leading neither");
    cluster.kill(first_down);
    writeln!(client.stdin.as_mut().expect("stdin"), "one-down").expect("tell the script");
    let answer = lines.next().and_then(Result::ok).unwrap_or_default();
    if answer != "one-down ok" {
        // Shows the script's failure (stderr) before this test's.
        expect_script_ok(&mut client, lines);
        panic!("expected `one-down ok`, got {answer:?}");
    }

    // A second node, not the leader of the min.insync.replicas=2 topic, stops.
    let second_down = (1..=3)
        .find(|id| *id != first_down && *id != leader_all2)
        .expect("a node not leading the second topic");
    cluster.kill(second_down);
    writeln!(client.stdin.as_mut().expect("stdin"), "two-down").expect("tell the script");
    let answer = lines.next().and_then(Result::ok).unwrap_or_default();
    if answer != "two-down ok" {
        // Shows the script's failure (stderr) before this test's.
        expect_script_ok(&mut client, lines);
        panic!("expected `two-down ok`, got {answer:?}");
    }

    cluster.restart(first_down);
    cluster.restart(second_down);
    writeln!(client.stdin.as_mut().expect("stdin"), "restarted").expect("tell the script");
    expect_script_ok(&mut client, lines);
}

/// A publish through `addr`'s admin API that may never be answered:
/// its status and body, or `None` when the connection failed or `wait`
/// ran out.
fn publish_waiting(addr: std::net::SocketAddr, path: &str, json: &str, wait: Duration) -> Option<(u16, String)> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(wait)).ok()?;
    stream
        .write_all(support::http_request_bytes(addr, "POST", path, &[("Content-Type", "application/json")], json).as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, body.to_owned()))
}

#[test]
fn a_partitioned_minority_stops_acknowledging_and_catches_up_after_healing() {
    let (cluster, proxy) = ClusterNodes::start_behind_proxy(3);
    kafka_ready(&cluster);
    let topic = "partitioned";
    create_topic(cluster.node(1), topic, 1, 3);
    let path = format!("/api/v1/topics/{topic}/messages");
    let publish = |id: usize, value: &str| {
        let json = format!(r#"{{"value":"{value}","partition":0}}"#);
        http_send(cluster.node(id).http_addr, "POST", &path, &json).0
    };
    let mut seen = None;
    let placed = eventually(WAIT, || {
        seen = agreed(&cluster, &[1, 2, 3], topic, |seen| {
            seen.len() == 1 && seen[0].0 > 0 && seen[0].3.len() == 3
        });
        seen.is_some()
    });
    assert!(placed, "every node agrees on a leader and three in-sync replicas");
    let leader = seen.expect("placement")[0].0 as usize;
    // Every value sent, and those acknowledged (201).
    let mut sent: Vec<String> = Vec::new();
    let mut acknowledged: Vec<String> = Vec::new();
    for index in 0..10 {
        let value = format!("before-{index}");
        sent.push(value.clone());
        assert_eq!(publish(leader, &value), 201, "{value} through the leader");
        acknowledged.push(value);
    }

    // The leader is cut off from both others: a publish it takes is not
    // acknowledged while it is alone, and is answered 504 once the 15 s
    // a replicated write waits for its commit have passed.
    proxy.isolate(leader, 3);
    let (minority_addr, minority_path) = (cluster.node(leader).http_addr, path.clone());
    sent.push("minority".to_owned());
    let (answer, minority) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let answered = publish_waiting(
            minority_addr,
            &minority_path,
            r#"{"value":"minority","partition":0}"#,
            Duration::from_secs(90),
        );
        let _ = answer.send((answered, started.elapsed()));
    });

    // The majority elects a leader of its own and goes on acknowledging.
    let majority: Vec<usize> = (1..=3).filter(|id| *id != leader).collect();
    let moved = eventually(Duration::from_secs(60), || {
        agreed(&cluster, &majority, topic, |seen| seen[0].0 > 0 && seen[0].0 as usize != leader).is_some()
    });
    assert!(moved, "the majority agrees on a new leader");
    for index in 0..10 {
        let through = majority[index % 2];
        // A value per attempt: an attempt without an answer may be in the
        // log, so its retry must not be the same record.
        let mut attempt = 0;
        let taken = eventually(WAIT, || {
            attempt += 1;
            let value = format!("during-{index}-{attempt}");
            sent.push(value.clone());
            let taken = publish(through, &value) == 201;
            if taken {
                acknowledged.push(value);
            }
            taken
        });
        assert!(taken, "the majority acknowledges during-{index}");
    }

    // A Kafka producer that knows only the isolated node (its Metadata
    // lists no other once they have been silent a while) gets
    // REQUEST_TIMED_OUT once the request's timeout_ms has passed.
    let isolated = cluster.node(leader);
    assert!(
        eventually(WAIT, || brokers(isolated) == [leader as i32]),
        "the isolated node lists itself alone: {:?}",
        brokers(isolated)
    );
    sent.push("minority-kafka".to_owned());
    let produced = support::run_script(
        isolated,
        "kafka/cluster_isolated_leader_confluent.py",
        &[&isolated.kafka_addr.to_string(), topic, "minority-kafka", "2000"],
    );
    let seconds: f64 = produced
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("timed-out "))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("expected `timed-out SECONDS`: {}", produced.stdout));
    assert!(
        (1.5..10.0).contains(&seconds),
        "REQUEST_TIMED_OUT after the request's 2 s, not later: {seconds} s"
    );

    let (answered, took) = minority
        .recv_timeout(Duration::from_secs(60))
        .expect("the isolated node's publish ends");
    let (status, body) = answered.expect("the isolated node answers the publish");
    assert_eq!(status, 504, "the isolated node times the publish out: {body}");
    assert!(body.contains(r#""code":"timeout""#), "{body}");
    assert!(
        took < Duration::from_secs(30),
        "answered within its 15 s bound, not later: {took:?}"
    );

    // Healed, the old leader follows the new one: its uncommitted entries
    // are replaced, and its copy becomes the majority's, record for record.
    proxy.heal();
    let copies = |id: usize| local_records(cluster.node(id), topic, 0);
    let mut last = Vec::new();
    let caught_up = eventually(Duration::from_secs(60), || {
        last = (1..=3).map(copies).collect();
        last.iter().all(|copy| copy == &last[0]) && acknowledged.iter().all(|value| last[0].iter().any(|record| &record.3 == value))
    });
    assert!(caught_up, "every copy holds every acknowledged record: {last:?}");
    let values: Vec<&String> = last[0].iter().map(|record| &record.3).collect();
    let offsets: Vec<u64> = last[0].iter().map(|record| record.0).collect();
    assert_eq!(offsets, (0..values.len() as u64).collect::<Vec<_>>(), "offsets gap-free from 0");
    for value in &values {
        assert!(sent.contains(value), "{value} was never sent");
        let count = values.iter().filter(|other| *other == value).count();
        assert_eq!(count, 1, "{value} is in the log {count} times");
    }
    let order: Vec<&String> = values.iter().copied().filter(|value| value.starts_with("before-")).collect();
    assert_eq!(
        order,
        acknowledged[..10].iter().collect::<Vec<_>>(),
        "the first records in the order acknowledged"
    );
}

/// One exact Kafka request to `server`'s Kafka door, answered (`None`
/// when the node could not be reached or answered nothing).
fn kafka_call<R: kafka_protocol::protocol::Request>(server: &Server, request: &R, version: i16) -> Option<R::Response> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mut client = Client::connect(server.kafka_addr).await.ok()?;
        tokio::time::timeout(Duration::from_secs(20), client.send(request, version))
            .await
            .ok()?
            .ok()
    })
}

/// The cluster id `server` answers in Metadata (v12) and DescribeCluster.
fn cluster_ids(server: &Server) -> Option<(String, String)> {
    let metadata = kafka_call(server, &MetadataRequest::default().with_topics(Some(Vec::new())), 12)?;
    let described = kafka_call(server, &DescribeClusterRequest::default().with_endpoint_type(1), 1)?;
    Some((metadata.cluster_id?.to_string(), described.cluster_id.to_string()))
}

#[test]
fn every_node_answers_the_one_cluster_id_the_first_metadata_leader_set() {
    let mut cluster = ClusterNodes::start(3);
    kafka_ready(&cluster);
    let mut answers = Vec::new();
    let agreed = eventually(WAIT, || {
        answers = (1..=3).map(|id| cluster_ids(cluster.node(id))).collect();
        answers
            .iter()
            .all(|answer| answer.as_ref().is_some_and(|(metadata, described)| metadata == described))
            && answers.windows(2).all(|pair| pair[0] == pair[1])
    });
    assert!(agreed, "every node answers one cluster id: {answers:?}");
    let (cluster_id, _) = answers[0].clone().expect("an answer");
    assert_eq!(cluster_id.len(), 22, "Kafka's form: {cluster_id}");
    for id in 1..=3 {
        let (_, overview) = cluster.node(id).http_get("/api/v1/overview");
        assert!(overview.contains(&cluster_id), "node {id}'s overview: {overview}");
    }

    // A node killed and started again answers it at once: its catalog has it.
    cluster.kill(2);
    cluster.restart(2);
    assert_eq!(cluster_ids(cluster.node(2)).map(|(metadata, _)| metadata), Some(cluster_id));
}

/// A fresh idempotent producer id from `server` (retried while the node
/// cannot reserve a block yet).
fn producer_id(server: &Server) -> i64 {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let mut answer = None;
    let granted = eventually(WAIT, || {
        answer = kafka_call(server, &request, 4).map(|response| (response.error_code, response.producer_id.0));
        answer.is_some_and(|(error_code, _)| error_code == 0)
    });
    assert!(granted, "InitProducerId: {answer:?}");
    answer.expect("an answer").1
}

#[test]
fn producer_ids_from_different_nodes_never_collide_also_after_a_restart() {
    let mut cluster = ClusterNodes::start(3);
    kafka_ready(&cluster);
    let mut handed_out: Vec<(usize, i64)> = Vec::new();
    for _ in 0..2 {
        for id in 1..=3 {
            handed_out.push((id, producer_id(cluster.node(id))));
        }
    }
    // Node 2 comes back: it takes a new block, not the rest of its old one.
    cluster.kill(2);
    cluster.restart(2);
    for id in [2, 1, 3, 2] {
        handed_out.push((id, producer_id(cluster.node(id))));
    }
    let mut ids: Vec<i64> = handed_out.iter().map(|(_, producer_id)| *producer_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), handed_out.len(), "every producer id once: {handed_out:?}");
    assert!(ids.iter().all(|producer_id| *producer_id >= 0), "{handed_out:?}");
}

/// Each partition of `topic` as `server` answers Metadata (v12):
/// (leader, leader epoch, replicas, in-sync replicas).
type Seen = Vec<(i32, i32, Vec<i32>, Vec<i32>)>;

fn partitions_seen(server: &Server, topic: &str) -> Option<Seen> {
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_owned())))),
        ]));
    let response = kafka_call(server, &request, 12)?;
    let found = response.topics.first().filter(|found| found.error_code == 0)?;
    let mut partitions: Vec<_> = found.partitions.iter().collect();
    partitions.sort_by_key(|partition| partition.partition_index);
    Some(
        partitions
            .into_iter()
            .map(|partition| {
                let ids = |nodes: &[kafka_protocol::messages::BrokerId]| nodes.iter().map(|node| node.0).collect::<Vec<i32>>();
                (
                    partition.leader_id.0,
                    partition.leader_epoch,
                    ids(&partition.replica_nodes),
                    ids(&partition.isr_nodes),
                )
            })
            .collect(),
    )
}

/// What every node of `nodes` answers for `topic`, when they all answer
/// the same and `complete` holds for it.
fn agreed(cluster: &ClusterNodes, nodes: &[usize], topic: &str, complete: impl Fn(&Seen) -> bool) -> Option<Seen> {
    let answers: Vec<Option<Seen>> = nodes.iter().map(|id| partitions_seen(cluster.node(*id), topic)).collect();
    let first = answers.first()?.clone()?;
    (answers.iter().all(|answer| answer.as_ref() == Some(&first)) && complete(&first)).then_some(first)
}

fn create_topic(server: &Server, topic: &str, partitions: i32, replication_factor: i16) {
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor),
    ]);
    let response = kafka_call(server, &request, 5).expect("CreateTopics answered");
    assert_eq!(response.topics[0].error_code, 0, "{topic}: {:?}", response.topics[0].error_message);
}

#[test]
fn every_node_answers_metadata_for_a_partition_as_its_leader_reports_it() {
    let mut cluster = ClusterNodes::start(3);
    kafka_ready(&cluster);
    // Replication factor 2 over three nodes: each partition has a node
    // that is not its replica, which answers all the same.
    create_topic(cluster.node(1), "spread", 3, 2);
    create_topic(cluster.node(2), "everywhere", 1, 3);
    let full = |seen: &Seen| {
        seen.iter().all(|(leader, epoch, replicas, in_sync)| {
            let mut sorted = in_sync.clone();
            sorted.sort_unstable();
            let mut expected = replicas.clone();
            expected.sort_unstable();
            *leader >= 0 && *epoch > 0 && replicas.contains(leader) && sorted == expected
        })
    };
    for (topic, partitions) in [("spread", 3), ("everywhere", 1)] {
        let mut last = Vec::new();
        let same = eventually(WAIT, || {
            last = (1..=3).map(|id| partitions_seen(cluster.node(id), topic)).collect();
            agreed(&cluster, &[1, 2, 3], topic, |seen| seen.len() == partitions && full(seen)).is_some()
        });
        assert!(same, "every node answers {topic} the same, complete: {last:?}");
    }
    operators_see_the_partition_groups(&cluster);

    // A follower dies: once its leader counts it out of sync, both
    // survivors answer the leader's ISR, without it.
    let seen = partitions_seen(cluster.node(1), "everywhere").expect("metadata");
    let (leader, _, replicas, _) = seen[0].clone();
    let follower = *replicas.iter().find(|id| **id != leader).expect("a follower") as usize;
    cluster.kill(follower);
    let survivors = cluster.running();
    let mut last = Vec::new();
    let shrunk = eventually(Duration::from_secs(60), || {
        last = survivors
            .iter()
            .map(|id| partitions_seen(cluster.node(*id), "everywhere"))
            .collect();
        agreed(&cluster, &survivors, "everywhere", |seen| {
            let (now_leader, _, _, in_sync) = &seen[0];
            *now_leader == leader && in_sync.len() == 2 && !in_sync.contains(&(follower as i32))
        })
        .is_some()
    });
    assert!(shrunk, "the survivors answer the leader's ISR without node {follower}: {last:?}");
}

/// `/api/v1/cluster`, `conveyor cluster status` and `/metrics` show every
/// partition's group: leader, replicas, ISR; the leader's replica lag.
fn operators_see_the_partition_groups(cluster: &ClusterNodes) {
    let seen = partitions_seen(cluster.node(1), "everywhere").expect("metadata");
    let leader = seen[0].0 as usize;
    for id in 1..=3 {
        let status = cluster_status(cluster.node(id));
        let groups = status["partition_groups"].as_array().cloned().unwrap_or_default();
        let spread = groups.iter().filter(|group| group["topic"] == "spread").count();
        assert_eq!(spread, 3, "node {id} lists every partition of spread: {status}");
        let everywhere = groups.iter().find(|group| group["topic"] == "everywhere").expect("everywhere/0");
        assert_eq!(everywhere["leader_id"], leader as u64, "node {id}: {everywhere}");
        assert_eq!(everywhere["replicas"].as_array().map(Vec::len), Some(3), "{everywhere}");
    }
    let leading = cluster_status(cluster.node(leader));
    let everywhere = leading["partition_groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|group| group["topic"] == "everywhere"))
        .cloned()
        .expect("everywhere/0");
    assert_eq!(everywhere["role"], "leader", "{everywhere}");
    assert!(
        everywhere["lag"].as_array().is_some_and(|lag| lag.len() >= 2),
        "the followers' lag: {everywhere}"
    );

    let sample = format!("conveyor_raft_leader{{group=\"everywhere/0\",node=\"{leader}\"}}");
    assert_eq!(support::metric(cluster.node(leader), &sample), Some(1.0), "{sample}");
    let (_, metrics) = cluster.node(leader).http_get("/metrics");
    for name in ["conveyor_raft_term", "conveyor_raft_commit_index"] {
        assert!(
            metrics.contains(&format!("{name}{{group=\"everywhere/0\"}}")),
            "{name} of everywhere/0"
        );
    }
    assert!(
        metrics.contains("conveyor_raft_replica_lag{group=\"everywhere/0\",replica="),
        "the leader reports its replicas' lag"
    );

    let (listed, printed) = conveyor_cli(cluster.node(2), &["cluster", "status"]);
    assert!(listed, "{printed}");
    for expected in ["spread", "everywhere", "ISR", "LEADER"] {
        assert!(printed.contains(expected), "{expected} in:\n{printed}");
    }
}

/// Runs `conveyor ARGS` against `server`'s admin API; whether it exited 0, and its output.
fn conveyor_cli(server: &Server, args: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new(support::binary())
        .args(args)
        .env("CONVEYOR_SERVER", format!("http://{}", server.http_addr))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("conveyor");
    let exit = support::wait_bounded(&mut command, Duration::from_secs(90));
    if exit.is_none() {
        let _ = command.kill();
        let _ = command.wait();
    }
    let mut printed = String::new();
    let _ = std::io::Read::read_to_string(&mut command.stdout.take().expect("stdout"), &mut printed);
    let _ = std::io::Read::read_to_string(&mut command.stderr.take().expect("stderr"), &mut printed);
    (exit.is_some_and(|status| status.success()), printed)
}

/// The voters of the metadata group as `server` reports them.
fn voters(server: &Server) -> Vec<u64> {
    let (status, body) = server.http_get("/api/v1/cluster");
    if status != 200 {
        return Vec::new();
    }
    let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut ids: Vec<u64> = status["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .filter(|member| member["voter"] == true)
                .filter_map(|member| member["node_id"].as_u64())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// The brokers `server` lists in Metadata.
fn brokers(server: &Server) -> Vec<i32> {
    let mut ids: Vec<i32> = kafka_call(server, &MetadataRequest::default().with_topics(Some(Vec::new())), 12)
        .map(|response| response.brokers.iter().map(|broker| broker.node_id.0).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

#[test]
fn a_fourth_node_joins_and_one_leaves_while_a_producer_goes_on_without_downtime() {
    let mut cluster = ClusterNodes::start(3);
    let bootstrap = kafka_ready(&cluster);
    let mut client = spawn_script(
        cluster.node(1),
        "kafka/cluster_membership_confluent.py",
        &[&bootstrap, "membership"],
    );
    let stdout = client.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let partition_leader = leader_line(&mut client, &mut lines);

    // A fourth node starts, is no member, and joins through node 1.
    let (fourth, fourth_addr) = cluster.start_another();
    let (added, printed) = conveyor_cli(cluster.node(1), &["cluster", "add", &fourth.to_string(), &fourth_addr]);
    assert!(added, "conveyor cluster add: {printed}");
    assert!(
        eventually(WAIT, || voters(cluster.node(1)) == [1, 2, 3, 4]),
        "four voters: {:?}",
        voters(cluster.node(1))
    );
    let joined = cluster.node(fourth);
    assert!(
        eventually(WAIT, || joined.http_get("/health").0 == 200
            && has(joined, "/api/v1/topics/membership")
            && brokers(joined).contains(&(fourth as i32))),
        "node {fourth} is healthy, has the catalog and lists itself: {:?} {:?}",
        joined.http_get("/health"),
        brokers(joined)
    );

    // A node that leads neither the metadata group nor the partition leaves,
    // asked through the new node (which sends it to the leader), then stops.
    let metadata_leader = leader_of(cluster.node(1)).expect("a metadata leader") as usize;
    let leaving = (1..=3)
        .find(|id| *id != metadata_leader && *id != partition_leader)
        .expect("a node leading neither");
    let (removed, printed) = conveyor_cli(joined, &["cluster", "remove", &leaving.to_string()]);
    assert!(removed, "conveyor cluster remove: {printed}");
    let staying: Vec<u64> = [1, 2, 3, 4].into_iter().filter(|id| *id != leaving as u64).collect();
    let staying_kafka: Vec<i32> = staying.iter().map(|id| *id as i32).collect();
    assert!(
        eventually(WAIT, || voters(cluster.node(metadata_leader)) == staying
            && brokers(cluster.node(metadata_leader)) == staying_kafka),
        "node {leaving} is gone from the members and from Metadata: {:?} {:?}",
        voters(cluster.node(metadata_leader)),
        brokers(cluster.node(metadata_leader))
    );
    assert!(
        !conveyor_cli(joined, &["cluster", "remove", &leaving.to_string()]).0,
        "removing a node that is no member fails"
    );
    cluster.kill(leaving);

    writeln!(client.stdin.as_mut().expect("stdin"), "done").expect("tell the script");
    expect_script_ok(&mut client, lines);
}

#[test]
fn a_consumer_group_resumes_from_its_committed_offsets_after_the_coordinator_is_killed() {
    let mut cluster = ClusterNodes::start(3);
    let bootstrap = kafka_ready(&cluster);
    let mut client = spawn_script(
        cluster.node(1),
        "kafka/cluster_group_failover_confluent.py",
        &[&bootstrap, "group-failover", "resuming-readers"],
    );
    let stdout = client.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    first_line_is(&mut client, &mut lines, "committed");
    // The metadata leader coordinates every group: it dies with the
    // group's offsets committed.
    let coordinator = leader_of(cluster.node(1)).expect("a metadata leader") as usize;
    cluster.kill(coordinator);
    let survivor = *cluster.running().first().expect("a survivor");
    let address = cluster.node(survivor).kafka_addr.to_string();
    writeln!(client.stdin.as_mut().expect("stdin"), "killed {address}").expect("tell the script");
    expect_script_ok(&mut client, lines);
}

#[test]
fn a_transaction_in_flight_ends_through_the_next_coordinator_after_the_coordinator_is_killed() {
    let mut cluster = ClusterNodes::start(3);
    let bootstrap = kafka_ready(&cluster);
    let mut client = spawn_script(
        cluster.node(1),
        "kafka/cluster_txn_coordinator_failover_confluent.py",
        &[&bootstrap, "coordinator-failover"],
    );
    let stdout = client.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    first_line_is(&mut client, &mut lines, "open");
    // The metadata leader coordinates every transactional id: it dies
    // with one transaction committed and the next one open.
    let coordinator = leader_of(cluster.node(1)).expect("a metadata leader") as usize;
    cluster.kill(coordinator);
    writeln!(client.stdin.as_mut().expect("stdin"), "killed").expect("tell the script");
    expect_script_ok(&mut client, lines);
}

#[test]
fn a_removed_node_s_partition_replicas_move_to_the_others_and_keep_the_quorum() {
    let mut cluster = ClusterNodes::start(4);
    let bootstrap = kafka_ready(&cluster);
    let topic = "reassigned";
    let mut client = spawn_script(cluster.node(1), "kafka/cluster_reassignment_confluent.py", &[&bootstrap, topic]);
    let stdout = client.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    first_line_is(&mut client, &mut lines, "produced");

    // A node that does not lead the metadata group, with replicas, leaves.
    let before = partitions_seen(cluster.node(1), topic).expect("metadata");
    let metadata_leader = leader_of(cluster.node(1)).expect("a metadata leader") as usize;
    let leaving = (1..=4)
        .find(|id| *id != metadata_leader && before.iter().any(|(_, _, replicas, _)| replicas.contains(&(*id as i32))))
        .expect("a node with replicas that does not lead the metadata group");
    let asked = (1..=4).find(|id| *id != leaving).expect("another node");
    let (removed, printed) = conveyor_cli(cluster.node(asked), &["cluster", "remove", &leaving.to_string()]);
    assert!(removed, "conveyor cluster remove: {printed}");
    let staying: Vec<u64> = (1..=4u64).filter(|id| *id != leaving as u64).collect();
    assert!(
        eventually(WAIT, || voters(cluster.node(asked)) == staying),
        "node {leaving} left the voters: {:?}",
        voters(cluster.node(asked))
    );
    cluster.kill(leaving);

    // Every survivor answers every partition with three replicas, all in
    // sync, none of them the removed node: the new replica caught up.
    let survivors = cluster.running();
    let gone = leaving as i32;
    let moved = |seen: &Seen| {
        seen.len() == before.len()
            && seen.iter().all(|(leader, _, replicas, in_sync)| {
                let mut sorted = replicas.clone();
                sorted.sort_unstable();
                sorted.dedup();
                let mut synced = in_sync.clone();
                synced.sort_unstable();
                *leader >= 0 && replicas.len() == 3 && sorted.len() == 3 && !replicas.contains(&gone) && synced == sorted
            })
    };
    let mut last = Vec::new();
    let settled = eventually(Duration::from_secs(90), || {
        last = survivors.iter().map(|id| partitions_seen(cluster.node(*id), topic)).collect();
        agreed(&cluster, &survivors, topic, moved).is_some()
    });
    assert!(
        settled,
        "every partition's replicas moved off node {leaving}: before {before:?}, now {last:?}"
    );
    for id in &survivors {
        let status = cluster_status(cluster.node(*id));
        let groups = status["partition_groups"].as_array().cloned().unwrap_or_default();
        let listed: Vec<&serde_json::Value> = groups.iter().filter(|group| group["topic"] == topic).collect();
        assert_eq!(listed.len(), before.len(), "node {id}: {status}");
        for group in listed {
            let replicas = group["replicas"].as_array().cloned().unwrap_or_default();
            assert!(
                replicas.len() == 3 && !replicas.contains(&serde_json::json!(leaving)),
                "node {id} shows the new replicas: {group}"
            );
        }
    }
    let (listed, printed) = conveyor_cli(cluster.node(survivors[0]), &["cluster", "status"]);
    assert!(listed && printed.contains(topic), "{printed}");

    // One more of the first replicas of a partition the removed node held
    // dies: with the moved replica that partition still has a quorum.
    let (_, _, first_replicas, _) = before
        .iter()
        .find(|(_, _, replicas, _)| replicas.contains(&gone))
        .cloned()
        .expect("a partition on the removed node");
    let second = first_replicas
        .iter()
        .map(|id| *id as usize)
        .find(|id| *id != leaving)
        .expect("another first replica");
    cluster.kill(second);
    writeln!(client.stdin.as_mut().expect("stdin"), "go").expect("tell the script");
    expect_script_ok(&mut client, lines);
}
