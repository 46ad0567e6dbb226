//! The core's error type. No wire codes here: each front door maps these
//! variants onto its protocol's errors in one table.

use std::path::PathBuf;

use conveyor_log::LogError;

use crate::topic_config::ConfigError;
use crate::topic_name::TopicNameError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("data directory {path} is in use by another conveyor process{holder}; stop it or choose another --data-dir")]
    DataDirLocked { path: PathBuf, holder: String },
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("this node does not lead partition {partition} of topic {topic:?}")]
    NotLeader { topic: String, partition: u32 },
    /// Fewer replicas are in sync than `min.insync.replicas` asks for a
    /// write that waits for all of them; nothing was written.
    #[error("partition {partition} of topic {topic:?} has {in_sync} in-sync replicas, fewer than min.insync.replicas {required}")]
    NotEnoughReplicas {
        topic: String,
        partition: u32,
        in_sync: usize,
        required: u16,
    },
    /// A write sent to a partition's leader on another node failed there,
    /// or its answer was lost on the way.
    #[error("the partition's leader did not take the write: {0}")]
    Replication(String),
    /// A write to a replicated partition was not committed by a majority
    /// of its replicas within the time it was given (its leader is cut
    /// off from them, or none is elected). It may still be committed
    /// later: the caller does not know whether it landed.
    #[error(
        "partition {partition} of topic {topic:?}: the write was not committed by a majority of its replicas within {timeout_ms} ms; it may still be committed"
    )]
    ReplicationTimedOut { topic: String, partition: u32, timeout_ms: u64 },
    /// A commit of group offsets did not reach the cluster's metadata
    /// group (its leader changed or is unknown); nothing is known stored.
    #[error("the group coordinator's write did not commit: {0}")]
    Coordination(String),
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("topic {0:?} is the log of a stream queue: it is declared, changed and deleted as a queue")]
    StreamTopic(String),
    #[error("topic {0:?} is read as a stream queue of the same name: delete the queue first; a stream reads one partition")]
    TopicReadAsStream(String),
    #[error("queue {0:?} is a stream: retention removes its messages, a purge does not")]
    StreamNotPurged(String),
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition { topic: String, partition: u32 },
    #[error(transparent)]
    InvalidTopicName(#[from] TopicNameError),
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    #[error(transparent)]
    InvalidGroupConfig(#[from] crate::group_config::GroupConfigError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata catalog: {0}")]
    Catalog(String),
    #[error("the broker is shutting down")]
    ShuttingDown,
    #[error("producer {producer_id}: expected sequence {expected}, received {received}")]
    OutOfOrderSequence { producer_id: i64, expected: i32, received: i32 },
    #[error("producer {producer_id}: epoch {epoch} is older than the current {current}")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16, current: i16 },
    #[error("a retry of a batch whose append is still in progress")]
    DuplicateSequence,
    #[error("conditional append refused, nothing written: {0}")]
    ConditionFailed(#[from] crate::append_condition::ConditionFailed),
    #[error(transparent)]
    Transaction(#[from] crate::transaction::TransactionError),
    #[error("no queue {0:?}")]
    UnknownQueue(String),
    #[error("queue {name:?}: {reason}")]
    InvalidQueueArgument { name: String, reason: String },
    /// A declaration of an existing queue that is not how it was declared:
    /// the first field that differs (`durable`, `auto_delete` or an
    /// argument, in RabbitMQ's order) and its values (`None`: not given),
    /// in RabbitMQ's words.
    #[error(
        "inequivalent arg '{field}' for queue {name:?}: received {} but current is {}",
        shown(.received.as_deref()),
        shown(.current.as_deref())
    )]
    QueueMismatch {
        name: String,
        field: String,
        received: Option<String>,
        current: Option<String>,
    },
    #[error("queue {name:?} {reason}")]
    QueueInUse { name: String, reason: String },
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    #[error(transparent)]
    Exchange(#[from] crate::exchange::ExchangeError),
    #[error(transparent)]
    Vhost(#[from] crate::vhost::VhostError),
    #[error(transparent)]
    LimitReached(#[from] crate::limits::LimitReached),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error("a record batch of {bytes} bytes exceeds topic {topic:?}'s max.message.bytes ({max_bytes})")]
    RecordTooLarge { topic: String, bytes: u64, max_bytes: u64 },
    /// Kafka's rule for `cleanup.policy=compact`: every record needs a key,
    /// the only thing compaction keeps records by. `records` are the
    /// keyless ones, by their index in their batch.
    #[error("Compacted topic cannot accept message without key")]
    RecordWithoutKey { records: Vec<usize> },
    /// A batch whose records the core had to read (a compacted topic's key
    /// check) does not decompress within the log's bound or does not parse.
    #[error("corrupt record batch: {0}")]
    CorruptRecords(conveyor_log::record::RecordError),
}

impl CoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> CoreError {
        CoreError::Io { path: path.into(), source }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// A declared value as RabbitMQ shows it in an equivalence failure: quoted,
/// or `none` when not given.
pub fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_owned(), |value| format!("'{value}'"))
}
