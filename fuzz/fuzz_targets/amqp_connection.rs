//! Feeds arbitrary bytes to one AMQP connection — the frame reader,
//! amq-protocol's decoder and the connection and channel state machines
//! against a real broker — over an in-memory pipe. The first input byte
//! picks whether a valid handshake (login, tune, open, channel 1) comes
//! first, so the fuzzer spends its time past the login. Must hold: no panic,
//! no abort, and the connection ends (the pipe's far side is closed).
#![no_main]

mod tmpfs_broker;

use std::sync::{Arc, OnceLock};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, connection};
use amq_protocol::types::{FieldTable, LongString, ShortString};
use conveyor_amqp::frame::{PROTOCOL_HEADER, encode};
use conveyor_amqp::{AmqpConfig, Context};
use conveyor_core::Broker;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tmpfs_broker::Harness;

#[global_allocator]
static ALLOCATOR: conveyor_alloc::LazyHugeAllocator = conveyor_alloc::LazyHugeAllocator;

/// The door's context, and a client's handshake to put before an input.
struct Door {
    context: Arc<Context>,
    handshake: Vec<u8>,
}

fn harness() -> &'static Harness<Door> {
    static HARNESS: OnceLock<Harness<Door>> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::open(|_, broker| door(broker)))
}

/// A context over `broker`, and a guest's handshake up to channel 1 open.
fn door(broker: Arc<Broker>) -> Door {
    let context = Arc::new(Context::new(broker, AmqpConfig::default()));
    let mut handshake = PROTOCOL_HEADER.to_vec();
    handshake.extend_from_slice(&encode(&[
        AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::default(),
                mechanism: ShortString::from("PLAIN"),
                response: LongString::from("\0guest\0guest"),
                locale: ShortString::from("en_US"),
            })),
        ),
        AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 16,
                frame_max: 131_072,
                heartbeat: 0,
            })),
        ),
        AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: ShortString::from("/"),
            })),
        ),
        AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))),
    ]));
    Door { context, handshake }
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut input = if mode & 1 == 1 {
        harness.door.handshake.clone()
    } else {
        Vec::new()
    };
    input.extend_from_slice(rest);
    harness.runtime.block_on(async {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let peer = "127.0.0.1:5672".parse().expect("address");
        let serving = tokio::spawn(conveyor_amqp::serve_connection(
            server,
            peer,
            Arc::clone(&harness.door.context),
            shutdown,
        ));
        let (mut reader, mut writer) = tokio::io::split(client);
        let _ = writer.write_all(&input).await;
        let _ = writer.shutdown().await;
        // Drain replies until the server ends the connection (bounded).
        let drained = tokio::time::timeout(std::time::Duration::from_secs(3), async {
            let mut sink = vec![0u8; 64 * 1024];
            for _ in 0..100_000 {
                match reader.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(drained.is_ok(), "the connection did not end after its input did");
        let joined = tokio::time::timeout(std::time::Duration::from_secs(3), serving).await;
        assert!(matches!(joined, Ok(Ok(()))), "the connection task panicked or hung");
    });
});
