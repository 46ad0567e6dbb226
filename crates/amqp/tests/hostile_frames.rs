//! Hostile input on the AMQP port: arbitrary bytes, and real frames (after
//! a real handshake) that are truncated, corrupted or spliced. Whatever comes
//! in, no task panics and the broker keeps serving a well-behaved client on
//! a new connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, confirm, connection, exchange, queue};
use amq_protocol::types::{FieldTable, LongString, ShortString};
use conveyor_amqp::frame::{PROTOCOL_HEADER, encode, read_frame};
use conveyor_amqp::nesting::nested_table_bytes;
use conveyor_amqp::{AmqpConfig, Context};
use conveyor_core::{Broker, BrokerConfig};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

static PANICS: AtomicUsize = AtomicUsize::new(0);

struct Harness {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// One broker for the whole test binary, so cases are cheap.
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = BrokerConfig::new(dir.path());
        config.topic_defaults.log.durability = conveyor_log::Durability::Never;
        let broker = Arc::new(Broker::open(config).expect("broker"));
        let addr = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let context = Arc::new(Context::new(broker, AmqpConfig::default()));
            let (stop, shutdown) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                let _keep_sender = stop;
                conveyor_amqp::serve(listener, context, shutdown).await;
            });
            addr
        });
        Harness { runtime, addr, _dir: dir }
    })
}

fn method(channel_id: u16, method: AMQPClass) -> AMQPFrame {
    AMQPFrame::Method(channel_id, method)
}

/// A client's side of the handshake, then channel 1 opened.
fn handshake() -> Vec<u8> {
    let mut bytes = PROTOCOL_HEADER.to_vec();
    bytes.extend_from_slice(&encode(&[
        method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::default(),
                mechanism: ShortString::from("PLAIN"),
                response: LongString::from("\0guest\0guest"),
                locale: ShortString::from("en_US"),
            })),
        ),
        method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 16,
                frame_max: 131_072,
                heartbeat: 0,
            })),
        ),
        method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: ShortString::from("/"),
            })),
        ),
        method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))),
    ]));
    bytes
}

/// Real frames a client sends after the handshake, each encoded on its own.
fn real_frames() -> Vec<Vec<u8>> {
    let frames = [
        vec![method(
            1,
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: ShortString::from("hostile"),
                passive: false,
                durable: true,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: FieldTable::default(),
            })),
        )],
        vec![
            method(
                1,
                AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                    exchange: ShortString::from(""),
                    routing_key: ShortString::from("hostile"),
                    mandatory: true,
                    immediate: false,
                })),
            ),
            AMQPFrame::Header(
                1,
                AMQPContentHeader {
                    class_id: 60,
                    body_size: 5,
                    properties: BasicProperties::default().with_delivery_mode(2),
                },
            ),
            AMQPFrame::Body(1, b"hello".to_vec()),
        ],
        vec![method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count: 10,
                global: false,
            })),
        )],
        vec![method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
                queue: ShortString::from("hostile"),
                no_ack: false,
            })),
        )],
        vec![method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
                delivery_tag: 1,
                multiple: true,
            })),
        )],
        vec![method(
            1,
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: ShortString::from("hostile-x"),
                kind: ShortString::from("topic"),
                passive: false,
                durable: false,
                auto_delete: false,
                internal: false,
                nowait: false,
                arguments: FieldTable::default(),
            })),
        )],
        vec![method(
            1,
            AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false })),
        )],
    ];
    frames.iter().map(|frames| encode(frames).to_vec()).collect()
}

/// Sends `bytes`, half-closes, and drains whatever comes back (bounded).
fn throw(bytes: &[u8]) {
    let harness = harness();
    harness.runtime.block_on(async {
        let mut stream = TcpStream::connect(harness.addr).await.expect("connect");
        let _ = stream.write_all(bytes).await;
        let _ = stream.shutdown().await;
        let mut sink = vec![0u8; 64 * 1024];
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            for _ in 0..10_000 {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
    });
}

/// A new connection completes the handshake and declares a queue.
fn assert_serving() {
    let harness = harness();
    harness.runtime.block_on(async {
        let mut stream = TcpStream::connect(harness.addr).await.expect("connect after hostile input");
        let mut request = handshake();
        request.extend_from_slice(&real_frames()[0]);
        stream.write_all(&request).await.expect("write");
        let mut reader = BufReader::new(stream);
        let declared = tokio::time::timeout(Duration::from_secs(5), async {
            for _ in 0..20 {
                match read_frame(&mut reader, 1 << 20).await {
                    Ok(AMQPFrame::Method(1, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)))) => return Some(ok),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
            None
        })
        .await
        .expect("answered in time");
        let declared = declared.expect("queue.declare-ok after the handshake");
        assert_eq!(declared.queue.as_str(), "hostile");
    });
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a task panicked");
}

#[test]
fn a_real_session_is_answered() {
    let _ = ProtocolVersion::amqp_0_9_1();
    assert_serving();
}

#[test]
fn a_frame_over_frame_max_or_a_bad_frame_end_closes_only_that_connection() {
    let mut oversized = handshake();
    // A method frame claiming 16 MiB on channel 1.
    oversized.extend_from_slice(&[1, 0, 1, 1, 0, 0, 0]);
    throw(&oversized);
    let mut bad_end = handshake();
    let mut frame = real_frames()[0].clone();
    let last = frame.len() - 1;
    frame[last] = 0;
    bad_end.extend_from_slice(&frame);
    throw(&bad_end);
    assert_serving();
}

/// A field table nesting `depth` tables, built from the inside out.
fn nested(depth: usize) -> FieldTable {
    let mut table = FieldTable::default();
    for _ in 1..depth {
        let mut outer = FieldTable::default();
        outer.insert(ShortString::from("a"), amq_protocol::types::AMQPValue::FieldTable(table));
        table = outer;
    }
    table
}

/// One frame of `kind` on `channel` around `payload`.
fn raw_frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![kind];
    frame.extend_from_slice(&channel.to_be_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.push(0xCE);
    frame
}

/// Sends `bytes` and returns the reply code of the `connection.close` the
/// broker answers with (`None` if the socket closed without one).
fn close_code_for(bytes: &[u8]) -> Option<u16> {
    let harness = harness();
    harness.runtime.block_on(async {
        let mut stream = TcpStream::connect(harness.addr).await.expect("connect");
        stream.write_all(bytes).await.expect("write");
        let mut reader = BufReader::new(stream);
        tokio::time::timeout(Duration::from_secs(5), async {
            for _ in 0..20 {
                match read_frame(&mut reader, 1 << 20).await {
                    Ok(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(close)))) => {
                        return Some(close.reply_code);
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
            None
        })
        .await
        .expect("answered in time")
    })
}

#[test]
fn a_start_ok_nested_ten_thousand_deep_closes_that_connection_with_501() {
    let mut payload = vec![0, 10, 0, 11];
    payload.extend_from_slice(&nested_table_bytes(10_000, true));
    payload.extend_from_slice(&[5, b'P', b'L', b'A', b'I', b'N', 0, 0, 0, 12]);
    payload.extend_from_slice(b"\0guest\0guest");
    payload.extend_from_slice(&[5, b'e', b'n', b'_', b'U', b'S']);
    let mut bytes = PROTOCOL_HEADER.to_vec();
    bytes.extend_from_slice(&raw_frame(1, 0, &payload));
    assert_eq!(close_code_for(&bytes), Some(501));
    assert_serving();
}

#[test]
fn a_publish_whose_headers_nest_ten_thousand_deep_closes_that_connection_with_501() {
    let mut bytes = handshake();
    bytes.extend_from_slice(&real_frames()[0]);
    bytes.extend_from_slice(&encode(&[method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: ShortString::from(""),
            routing_key: ShortString::from("hostile"),
            mandatory: false,
            immediate: false,
        })),
    )]));
    // Class 60, weight 0, body size 1, property flags: headers only.
    let mut header = vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0b0010_0000, 0];
    header.extend_from_slice(&nested_table_bytes(10_000, false));
    bytes.extend_from_slice(&raw_frame(2, 1, &header));
    bytes.extend_from_slice(&raw_frame(3, 1, b"x"));
    assert_eq!(close_code_for(&bytes), Some(501));
    assert_serving();
}

#[test]
fn declare_arguments_one_level_too_deep_close_that_connection_with_501() {
    let mut bytes = handshake();
    bytes.extend_from_slice(&encode(&[method(
        1,
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: ShortString::from("deep-arguments"),
            passive: false,
            durable: true,
            exclusive: false,
            auto_delete: false,
            nowait: false,
            arguments: nested(conveyor_amqp::nesting::DEPTH_MAX + 1),
        })),
    )]));
    assert_eq!(close_code_for(&bytes), Some(501));
    assert_serving();
}

/// Sends `bytes` and returns the first close the broker answers with: the
/// channel it closed (0 for the connection) and its reply code (`None` if
/// the socket closed without one).
fn first_close_for(bytes: &[u8]) -> Option<(u16, u16)> {
    let harness = harness();
    harness.runtime.block_on(async {
        let mut stream = TcpStream::connect(harness.addr).await.expect("connect");
        stream.write_all(bytes).await.expect("write");
        let mut reader = BufReader::new(stream);
        tokio::time::timeout(Duration::from_secs(5), async {
            for _ in 0..20 {
                match read_frame(&mut reader, 1 << 20).await {
                    Ok(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(close)))) => {
                        return Some((0, close.reply_code));
                    }
                    Ok(AMQPFrame::Method(id, AMQPClass::Channel(channel::AMQPMethod::Close(close)))) => {
                        return Some((id, close.reply_code));
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
            None
        })
        .await
        .expect("answered in time")
    })
}

/// A queue declaration on channel 1, with `arguments`.
fn declare(name: &str, arguments: FieldTable) -> Vec<u8> {
    encode(&[method(
        1,
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: ShortString::from(name),
            passive: false,
            durable: true,
            exclusive: false,
            auto_delete: false,
            nowait: false,
            arguments,
        })),
    )])
    .to_vec()
}

/// The queue "hostile" declared on channel 1, then a `basic.publish` to it whose
/// content header says `body_size` and whose one body frame is `body`.
fn publish(body_size: u64, properties: BasicProperties, body: &[u8]) -> Vec<u8> {
    let mut bytes = real_frames()[0].clone();
    bytes.extend_from_slice(&encode(&[
        method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: ShortString::from(""),
                routing_key: ShortString::from("hostile"),
                mandatory: false,
                immediate: false,
            })),
        ),
        AMQPFrame::Header(
            1,
            AMQPContentHeader {
                class_id: 60,
                body_size,
                properties,
            },
        ),
        AMQPFrame::Body(1, body.to_vec()),
    ]));
    bytes
}

#[test]
fn malformed_frames_get_rabbitmqs_connection_close_before_the_socket_closes() {
    let after_handshake = |frame: &[u8]| {
        let mut bytes = handshake();
        bytes.extend_from_slice(frame);
        first_close_for(&bytes)
    };
    assert_eq!(after_handshake(&raw_frame(9, 1, b"x")), Some((0, 501)), "an unknown frame type");
    let mut bad_end = real_frames()[0].clone();
    let last = bad_end.len() - 1;
    bad_end[last] = 0;
    assert_eq!(after_handshake(&bad_end), Some((0, 501)), "a frame not ending in 0xCE");
    assert_eq!(
        after_handshake(&raw_frame(1, 1, &[0, 60, 0, 99])),
        Some((0, 540)),
        "an unknown method"
    );
    assert_eq!(
        after_handshake(&raw_frame(1, 1, &[0, 77, 0, 10])),
        Some((0, 540)),
        "an unknown class"
    );
    let mut not_utf8 = declare("hostile-utf8", FieldTable::default());
    let at = not_utf8
        .windows(b"hostile-utf8".len())
        .position(|window| window == b"hostile-utf8")
        .expect("the name");
    not_utf8[at] = 0xFF;
    assert_eq!(after_handshake(&not_utf8), Some((0, 501)), "a short string that is not UTF-8");
    let longer_body = publish(2, BasicProperties::default(), b"hello");
    assert_eq!(after_handshake(&longer_body), Some((0, 501)), "a body longer than its header says");
    assert_serving();
}

#[test]
fn invalid_acks_arguments_and_expirations_close_the_channel_with_406() {
    let after_handshake = |frames: &[u8]| {
        let mut bytes = handshake();
        bytes.extend_from_slice(frames);
        first_close_for(&bytes)
    };
    let ack_never_issued = encode(&[method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: 7,
            multiple: true,
        })),
    )]);
    assert_eq!(
        after_handshake(&ack_never_issued),
        Some((1, 406)),
        "basic.ack multiple of a tag never issued"
    );
    let mut bogus_type = FieldTable::default();
    bogus_type.insert(
        ShortString::from("x-queue-type"),
        amq_protocol::types::AMQPValue::LongString(LongString::from("bogus")),
    );
    assert_eq!(
        after_handshake(&declare("hostile-type", bogus_type)),
        Some((1, 406)),
        "x-queue-type bogus"
    );
    let mut numeric_dlx = FieldTable::default();
    numeric_dlx.insert(
        ShortString::from("x-dead-letter-exchange"),
        amq_protocol::types::AMQPValue::LongInt(7),
    );
    assert_eq!(
        after_handshake(&declare("hostile-dlx", numeric_dlx)),
        Some((1, 406)),
        "x-dead-letter-exchange as an integer"
    );
    for expiration in ["abc", "-1"] {
        let expiring = BasicProperties::default().with_expiration(ShortString::from(expiration));
        assert_eq!(
            after_handshake(&publish(1, expiring, b"x")),
            Some((1, 406)),
            "expiration {expiration:?}"
        );
    }
    assert_serving();
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
    ]
}

fn apply(frame: &mut Vec<u8>, mutation: &Mutation) {
    if frame.is_empty() {
        return;
    }
    match mutation {
        Mutation::Flip { at, bits } => {
            let at = at % frame.len();
            frame[at] ^= bits;
        }
        Mutation::Truncate { at } => frame.truncate(at % frame.len()),
        Mutation::Insert { at, bytes } => {
            let at = at % (frame.len() + 1);
            frame.splice(at..at, bytes.iter().copied());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_take_the_broker_down(bytes in prop::collection::vec(any::<u8>(), 0..512), after_handshake in any::<bool>()) {
        let mut input = if after_handshake { handshake() } else { Vec::new() };
        input.extend_from_slice(&bytes);
        throw(&input);
        assert_serving();
    }

    #[test]
    fn mutated_real_frames_never_take_the_broker_down(
        picks in prop::collection::vec(0usize..7, 1..6),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let frames = real_frames();
        let mut session: Vec<u8> = picks.iter().flat_map(|pick| frames[*pick].clone()).collect();
        for mutation in &mutations {
            apply(&mut session, mutation);
        }
        let mut input = handshake();
        input.extend_from_slice(&session);
        throw(&input);
        assert_serving();
    }
}
