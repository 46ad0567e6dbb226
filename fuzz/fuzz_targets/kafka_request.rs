//! Feeds arbitrary bytes to the Kafka request path — header parsing, body
//! decoding with kafka-protocol, and the handlers against a real broker — as
//! one request frame. Must hold: no panic, no abort (huge reservations go
//! through conveyor-alloc as in the broker), every reply is a size-prefixed frame.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use conveyor_core::{Broker, BrokerConfig};
use conveyor_kafka::{Context, KafkaConfig};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: conveyor_alloc::LazyHugeAllocator = conveyor_alloc::LazyHugeAllocator;

struct Harness {
    runtime: tokio::runtime::Runtime,
    context: Arc<Context>,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        let dir = tempfile::tempdir_in(base).expect("tempdir");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mut config = BrokerConfig::new(dir.path());
        config.topic_defaults.log.durability = conveyor_log::Durability::Never;
        let broker = Arc::new(Broker::open(config).expect("broker"));
        runtime.block_on(async {
            broker.create_topic("target", Some(2), BTreeMap::new()).await.expect("topic");
        });
        let context = Arc::new(Context {
            broker,
            config: KafkaConfig::default(),
            share_sessions: Default::default(),
        });
        Harness { runtime, context, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let frame = bytes::Bytes::copy_from_slice(data);
    let reply = harness.runtime.block_on(async {
        // Long polls (Fetch max_wait, JoinGroup's rebalance delay) would make
        // every such input cost seconds; what they do after the wait is
        // covered by the inputs that do not wait.
        tokio::time::timeout(std::time::Duration::from_millis(100), conveyor_kafka::handle_frame(&harness.context, frame)).await
    });
    if let Ok(Ok(Some(reply))) = reply {
        assert!(reply.len() >= 8, "a reply frame holds at least a size and a correlation id");
        let size = i32::from_be_bytes([reply[0], reply[1], reply[2], reply[3]]) as usize;
        assert_eq!(size, reply.len() - 4, "the size prefix matches the reply");
    }
});
