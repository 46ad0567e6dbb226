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
//! records. An acks=all produce while fewer replicas are in sync than the
//! topic's min.insync.replicas is refused with NOT_ENOUGH_REPLICAS and
//! writes nothing. Every wait is a bounded poll;
//! every process is stopped by its PID.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

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
        eventually(WAIT, || (1..=3).all(|id| {
            cluster.node(id).http_get("/health").0 == 200
                && cluster_status(cluster.node(id))["members"]
                    .as_array()
                    .is_some_and(|members| members.len() == 3 && members.iter().all(|member| member["kafka_addr"].is_string()))
        })),
        "every node healthy and every member's Kafka door known everywhere"
    );
    (1..=3)
        .map(|id| cluster.node(id).kafka_addr.to_string())
        .collect::<Vec<_>>()
        .join(",")
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
