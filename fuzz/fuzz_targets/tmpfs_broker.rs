//! The broker the door targets (`kafka_request`, `amqp_connection`) drive:
//! a real one on tmpfs (or `/tmp` where there is none), without fsyncs, on a
//! current-thread runtime, opened once per fuzzing process.

use std::sync::Arc;

use conveyor_core::{Broker, BrokerConfig};

/// What a door target keeps for the whole run: the runtime, what the door
/// needs (its context over the broker), and the broker's data directory.
pub struct Harness<D> {
    pub runtime: tokio::runtime::Runtime,
    pub door: D,
    _dir: tempfile::TempDir,
}

impl<D> Harness<D> {
    /// Opens the broker and hands it to `door`, which sets up what the
    /// target needs (awaiting on the runtime where it must).
    pub fn open(door: impl FnOnce(&tokio::runtime::Runtime, Arc<Broker>) -> D) -> Harness<D> {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let dir = tempfile::tempdir_in(base).expect("tempdir");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mut config = BrokerConfig::new(dir.path());
        config.topic_defaults.log.durability = conveyor_log::Durability::Never;
        let broker = Arc::new(Broker::open(config).expect("broker"));
        let door = door(&runtime, broker);
        Harness { runtime, door, _dir: dir }
    }
}
