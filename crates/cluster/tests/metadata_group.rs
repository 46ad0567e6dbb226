//! Three cluster nodes in one process on loopback TCP: the metadata group
//! elects a leader, catalog events proposed on any node are applied on
//! every node, the survivors of a stopped leader elect another and go on,
//! and the stopped node catches up when it comes back. Every wait is a
//! bounded poll.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use conveyor_cluster::{ClusterConfig, ClusterNode, Doors, NodeId};
use conveyor_core::catalog::{Event, QueueDefinition};

const WAIT: Duration = Duration::from_secs(20);

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn doors(id: NodeId) -> Doors {
    Doors {
        kafka_addr: format!("127.0.0.1:{}", 19000 + id),
        amqp_addr: format!("127.0.0.1:{}", 15000 + id),
        http_addr: format!("127.0.0.1:{}", 18000 + id),
    }
}

async fn start(id: NodeId, peers: &BTreeMap<NodeId, SocketAddr>, root: &Path) -> Arc<ClusterNode> {
    let config = ClusterConfig::new(id, peers[&id], peers.clone()).expect("config");
    ClusterNode::start(config, &root.join(format!("node-{id}")), doors(id))
        .await
        .expect("start")
}

/// Polls `check` every 50 ms until it holds, at most [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn queue_declared(name: &str) -> Event {
    Event::QueueDeclared {
        id: uuid_of(name),
        name: name.to_owned(),
        definition: QueueDefinition {
            durable: true,
            ..QueueDefinition::default()
        },
        created_ms: 0,
    }
}

fn uuid_of(name: &str) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    for (slot, byte) in bytes.iter_mut().zip(name.bytes()) {
        *slot = byte;
    }
    uuid::Uuid::from_bytes(bytes)
}

fn has_queue(node: &ClusterNode, name: &str) -> bool {
    node.applied().catalog.queues.contains_key(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_is_replicated_survives_a_leader_stop_and_a_returning_node_catches_up() {
    let root = tempfile::tempdir().expect("tempdir");
    let peers: BTreeMap<NodeId, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
    let mut nodes: BTreeMap<NodeId, Arc<ClusterNode>> = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(id, &peers, root.path()).await);
    }
    eventually("every node to know a leader", || nodes.values().all(|node| node.has_leader())).await;
    eventually("every node's doors advertised everywhere", || {
        nodes
            .values()
            .all(|node| (1..=3).all(|id| node.applied().doors.get(&id) == Some(&doors(id))))
    })
    .await;

    // Proposed on a follower: forwarded to the leader, applied everywhere.
    let leader = nodes[&1].status().leader_id.expect("leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    nodes[&follower]
        .propose(vec![queue_declared("orders")])
        .await
        .expect("propose on a follower");
    assert!(has_queue(&nodes[&follower], "orders"), "answered only once applied on the proposer");
    eventually("orders on every node", || nodes.values().all(|node| has_queue(node, "orders"))).await;
    let status = nodes[&leader].status();
    assert_eq!(status.role, "leader");
    assert_eq!(status.members.len(), 3);
    assert!(status.members.iter().all(|member| member.matched_index.is_some()), "{status:?}");

    // The leader stops; the two others elect one of them and go on.
    let stopped = nodes.remove(&leader).expect("leader node");
    stopped.shutdown().await;
    drop(stopped);
    eventually("a new leader among the survivors", || {
        nodes
            .values()
            .all(|node| node.status().leader_id.is_some_and(|id| id != leader && nodes.contains_key(&id)))
    })
    .await;
    let survivor = nodes.keys().next().copied().expect("a survivor");
    nodes[&survivor]
        .propose(vec![queue_declared("invoices")])
        .await
        .expect("propose without the old leader");

    // The old leader returns on its data and catches up.
    nodes.insert(leader, start(leader, &peers, root.path()).await);
    eventually("the returning node to see what was declared while it was down", || {
        has_queue(&nodes[&leader], "invoices") && has_queue(&nodes[&leader], "orders")
    })
    .await;
    for node in nodes.values() {
        node.shutdown().await;
    }
}
