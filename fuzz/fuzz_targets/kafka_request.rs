//! Feeds arbitrary bytes to the Kafka request path — header parsing, body
//! decoding with kafka-protocol, and the handlers against a real broker — as
//! one request frame. Must hold: no panic, no abort (huge reservations go
//! through conveyor-alloc as in the broker), every reply is a size-prefixed frame.
#![no_main]

mod tmpfs_broker;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use conveyor_kafka::{Context, KafkaConfig};
use libfuzzer_sys::fuzz_target;

use tmpfs_broker::Harness;

#[global_allocator]
static ALLOCATOR: conveyor_alloc::LazyHugeAllocator = conveyor_alloc::LazyHugeAllocator;

/// The door's context over a broker with topic `target` (two partitions).
fn harness() -> &'static Harness<Arc<Context>> {
    static HARNESS: OnceLock<Harness<Arc<Context>>> = OnceLock::new();
    HARNESS.get_or_init(|| {
        Harness::open(|runtime, broker| {
            runtime.block_on(async {
                broker.create_topic("target", Some(2), BTreeMap::new()).await.expect("topic");
            });
            Arc::new(Context {
                broker,
                config: KafkaConfig::default(),
                share_sessions: Default::default(),
            })
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let frame = bytes::Bytes::copy_from_slice(data);
    let reply = harness.runtime.block_on(async {
        // Long polls (Fetch max_wait, JoinGroup's rebalance delay) would make
        // every such input cost seconds; what they do after the wait is
        // covered by the inputs that do not wait.
        tokio::time::timeout(
            std::time::Duration::from_millis(100),
            conveyor_kafka::handle_frame(&harness.door, frame),
        )
        .await
    });
    if let Ok(Ok(Some(reply))) = reply {
        assert!(reply.len() >= 8, "a reply frame holds at least a size and a correlation id");
        let size = i32::from_be_bytes([reply[0], reply[1], reply[2], reply[3]]) as usize;
        assert_eq!(size, reply.len() - 4, "the size prefix matches the reply");
    }
});
