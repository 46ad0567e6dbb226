//! Kafka share groups (KIP-932) in the core's terms: a share group over a
//! topic partition is a share cursor over that partition's log
//! (`share_partition.rs`), the same machinery as an AMQP or SQS queue, that
//! hands out only the records its isolation level lets out
//! (`record_filter.rs`); its members, their epochs and assignments are
//! `membership.rs`, kept across restarts by `store.rs`. No wire format here; the Kafka door translates.

mod coordinator;
mod membership;
mod record_filter;
mod share_partition;
mod store;

pub use coordinator::ShareGroupCoordinator;
pub use membership::{
    HEARTBEAT_INTERVAL_MS_DEFAULT, Heartbeat, HeartbeatReply, JOIN_EPOCH, LEAVE_EPOCH, MembershipError, SESSION_TIMEOUT_MS_DEFAULT,
    ShareGroup, ShareGroups, ShareMember,
};
pub use record_filter::IsolationLevel;
pub use share_partition::{
    AcknowledgeType, AcquiredRange, DELIVERY_COUNT_LIMIT_DEFAULT, RECORD_LOCK_DURATION_MS_DEFAULT, RECORD_LOCKS_MAX_DEFAULT,
    SharePartition, SharePartitionConfig,
};
pub use store::ShareGroupStore;
