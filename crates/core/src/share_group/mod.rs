//! Kafka share groups (KIP-932) in the core's terms: a share group over a
//! topic partition is a share cursor over that partition's log
//! (`share_partition.rs`), the same machinery as an AMQP or SQS queue. No
//! wire format and no member protocol here; the Kafka door translates.

mod share_partition;

pub use share_partition::{
    AcknowledgeType, AcquiredRange, DELIVERY_COUNT_LIMIT_DEFAULT, RECORD_LOCK_DURATION_MS_DEFAULT, RECORD_LOCKS_MAX_DEFAULT,
    SharePartition, SharePartitionConfig,
};
