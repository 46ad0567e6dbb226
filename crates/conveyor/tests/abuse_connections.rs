//! A flood of idle TCP connections against a real `conveyor serve`: 5,000
//! on each port (Kafka, AMQP, HTTP), each flood from its own loopback
//! address. Past `connections_per_address_max` (its default, 1,000) the
//! broker refuses them — Kafka and HTTP close the socket at accept, AMQP
//! answers `connection.open` with 530 and closes — and holds the ones it
//! admitted; meanwhile and afterwards a client from another address is
//! served on every door and `/health` answers 200.
//!
//! The defaults are used as they are: 3,000 admitted connections plus the
//! refused ones in flight stay well below this machine's `RLIMIT_NOFILE`
//! (20,000 here and in CI); the AMQP handshake and HTTP header timeouts are
//! raised so that the idle connections are held by the connection cap, not
//! closed by those timeouts (tested on their own elsewhere).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, queue};
use conveyor_kafka::client::Client;
use kafka_protocol::messages::ApiVersionsRequest;
use support::raw_amqp::{RawAmqp, channel_open, handshake_bytes, queue_declare};
use support::{Server, eventually, metric, start_with_config};

/// Idle connections opened on each port.
const FLOOD: usize = 5_000;
/// `connections_per_address_max`'s default.
const PER_ADDRESS_MAX: usize = 1_000;
/// Bounds every wait on the broker.
const WAIT: Duration = Duration::from_secs(60);

/// Opens `FLOOD` connections to `target` from `source`, non-blocking, each
/// sending `greeting` first (nothing, for an idle connection).
fn flood(runtime: &tokio::runtime::Runtime, source: Ipv4Addr, target: SocketAddr, greeting: &[u8]) -> Vec<TcpStream> {
    runtime.block_on(async {
        let mut streams = Vec::with_capacity(FLOOD);
        for _ in 0..FLOOD {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).expect("bind a loopback source");
            let stream = tokio::time::timeout(WAIT, socket.connect(target))
                .await
                .expect("connected in time")
                .expect("connect");
            let mut stream = stream.into_std().expect("a std stream");
            stream.set_nonblocking(true).expect("non-blocking");
            if !greeting.is_empty() {
                stream.set_nonblocking(false).expect("blocking");
                stream.write_all(greeting).expect("greeting");
                stream.set_nonblocking(true).expect("non-blocking");
            }
            streams.push(stream);
        }
        streams
    })
}

/// Whether the broker still holds `stream` open: whatever it sent is read
/// and dropped; an end of stream or a reset means it closed it.
fn alive(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Waits until exactly `PER_ADDRESS_MAX` of `streams` are still open (the
/// refused ones closed by the broker), and that holds a moment later too.
fn admitted_exactly_the_cap(streams: &mut [TcpStream], door: &str) {
    let mut open = 0;
    let settled = eventually(WAIT, || {
        open = streams.iter_mut().map(alive).filter(|held| *held).count();
        open == PER_ADDRESS_MAX
    });
    assert!(
        settled,
        "{door}: {open} of {FLOOD} idle connections held open, expected {PER_ADDRESS_MAX}"
    );
}

/// A client from 127.0.0.1 is served on every door, and `/health` is 200.
fn served(runtime: &tokio::runtime::Runtime, server: &Server, queue: &str) {
    runtime.block_on(async {
        let mut client = tokio::time::timeout(WAIT, Client::connect(server.kafka_addr))
            .await
            .expect("Kafka connect in time")
            .expect("Kafka connect");
        let versions = tokio::time::timeout(WAIT, client.send(&ApiVersionsRequest::default(), 3))
            .await
            .expect("ApiVersions in time")
            .expect("ApiVersions");
        assert_eq!(versions.error_code, 0);
    });
    let mut amqp = RawAmqp::connect(server.amqp_addr, 8);
    amqp.send(&[channel_open(1), queue_declare(1, queue)]);
    amqp.expect(WAIT, |_, method| {
        matches!(method, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))
    });
    assert_eq!(server.http_get("/health").0, 200);
}

#[test]
fn five_thousand_idle_connections_per_port_are_refused_past_the_cap_while_others_are_served() {
    let (_dir, server) = start_with_config("[limits]\namqp_handshake_timeout_ms = 600000\nhttp_header_read_timeout_ms = 600000\n");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    let mut kafka = flood(&runtime, Ipv4Addr::new(127, 0, 0, 2), server.kafka_addr, &[]);
    let mut amqp = flood(&runtime, Ipv4Addr::new(127, 0, 0, 3), server.amqp_addr, &handshake_bytes(8));
    let mut http = flood(&runtime, Ipv4Addr::new(127, 0, 0, 4), server.http_addr, &[]);
    admitted_exactly_the_cap(&mut kafka, "Kafka");
    admitted_exactly_the_cap(&mut amqp, "AMQP");
    admitted_exactly_the_cap(&mut http, "HTTP");
    let refused = metric(&server, "conveyor_limit_reached_total{limit=\"connections_per_address_max\"}").unwrap_or_default();
    assert!(
        refused >= (3 * (FLOOD - PER_ADDRESS_MAX)) as f64,
        "every refusal counted: {refused}"
    );
    served(&runtime, &server, "during-the-flood");

    drop((kafka, amqp, http));
    // Once the flood is gone its address may connect again.
    assert!(
        eventually(WAIT, || admitted_from(Ipv4Addr::new(127, 0, 0, 2), server.kafka_addr)),
        "the flooding address is admitted again once its connections closed"
    );
    served(&runtime, &server, "after-the-flood");
}

/// Whether an idle connection from `source` is held: a refused one is
/// closed right after its accept, so a short bounded wait tells them apart.
fn admitted_from(source: Ipv4Addr, target: SocketAddr) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).expect("bind");
        socket.connect(target).await.expect("connect").into_std().expect("std")
    });
    stream.set_nonblocking(true).expect("non-blocking");
    !eventually(Duration::from_millis(500), || !alive(&mut stream))
}
