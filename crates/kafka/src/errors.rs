//! The one table that maps core and log errors onto Kafka error codes.

use conveyor_core::CoreError;
use conveyor_core::group::{ConsumerGroupError, GroupError};
use conveyor_core::transaction::TransactionError;
use conveyor_log::LogError;
use kafka_protocol::ResponseError;

pub fn core_error(error: &CoreError) -> ResponseError {
    match error {
        CoreError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        CoreError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        // Retriable: the client refreshes its metadata and finds the leader.
        CoreError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
        // Kafka's answer to acks=all below min.insync.replicas (retriable).
        CoreError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
        CoreError::Replication(_) => ResponseError::UnknownServerError,
        // Kafka's answer to an acks=all produce its replicas did not take
        // within the request's timeout_ms (retriable; it may have landed).
        CoreError::ReplicationTimedOut { .. } => ResponseError::RequestTimedOut,
        // Retriable: the client finds the coordinator again.
        CoreError::Coordination(_) => ResponseError::NotCoordinator,
        CoreError::UnknownTopic(_) | CoreError::UnknownPartition { .. } => ResponseError::UnknownTopicOrPartition,
        CoreError::InvalidTopicName(_) => ResponseError::InvalidTopicException,
        CoreError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        CoreError::InvalidConfig(_) | CoreError::InvalidGroupConfig(_) => ResponseError::InvalidConfig,
        CoreError::Log(error) => log_error(error),
        // Retriable: the client refreshes metadata and tries again after the restart.
        CoreError::ShuttingDown => ResponseError::NotLeaderOrFollower,
        CoreError::DataDirLocked { .. } | CoreError::Io { .. } | CoreError::Catalog(_) => ResponseError::UnknownServerError,
        CoreError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        CoreError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        // Clients treat it as success: the original append is in progress.
        CoreError::DuplicateSequence => ResponseError::DuplicateSequenceNumber,
        CoreError::Transaction(error) => transaction_error(error, true),
        // Retriable: the same batch may pass once the appends in flight are answered.
        CoreError::ConditionFailed(failed) if failed.is_retriable() => ResponseError::KafkaStorageError,
        // Not retriable, as Kafka's own INVALID_RECORD: the producer must read again.
        CoreError::ConditionFailed(_) => ResponseError::InvalidRecord,
        // Not retriable: the broker's own policy refuses it until an operator raises the limit.
        CoreError::LimitReached(_) => ResponseError::PolicyViolation,
        CoreError::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
        // Kafka's own answer to a keyless record on a compacted topic.
        CoreError::RecordWithoutKey { .. } => ResponseError::InvalidRecord,
        // Kafka's answer to a batch whose records do not decompress or parse.
        CoreError::CorruptRecords(_) => ResponseError::CorruptMessage,
        // A stream's log is deleted or grown as its queue, over AMQP or the
        // admin API; of its configs only the retention keys change (its arguments).
        CoreError::StreamTopic(_) | CoreError::TopicReadAsStream(_) => ResponseError::PolicyViolation,
        // Queues and vhosts are not reachable through the Kafka API.
        CoreError::UnknownQueue(_)
        | CoreError::Vhost(_)
        | CoreError::InvalidQueueArgument { .. }
        | CoreError::QueueMismatch { .. }
        | CoreError::QueueInUse { .. }
        | CoreError::StreamNotPurged(_)
        | CoreError::Queue(_)
        | CoreError::Exchange(_) => ResponseError::UnknownServerError,
        // Users and grants are changed through the admin API for now.
        CoreError::Auth(_) => ResponseError::InvalidRequest,
    }
}

pub fn log_error(error: &LogError) -> ResponseError {
    match error {
        LogError::InvalidBatch { .. } => ResponseError::CorruptMessage,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        // KAFKA_STORAGE_ERROR is retriable in Kafka's clients: a producer
        // retries an append refused by a full file system until space is free
        // (or its delivery timeout).
        LogError::Poisoned { .. } | LogError::Io { .. } | LogError::StorageFull { .. } => ResponseError::KafkaStorageError,
        LogError::Closed(_) => ResponseError::NotLeaderOrFollower,
    }
}

pub fn group_error(error: &GroupError) -> ResponseError {
    match error {
        GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::InvalidSessionTimeout(_) => ResponseError::InvalidSessionTimeout,
        GroupError::MemberIdRequired(_) => ResponseError::MemberIdRequired,
        GroupError::GroupIdNotFound(_) | GroupError::NotClassicGroup(_) => ResponseError::GroupIdNotFound,
        GroupError::NonEmptyGroup(_) => ResponseError::NonEmptyGroup,
        GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::OffsetMetadataTooLarge(_) => ResponseError::OffsetMetadataTooLarge,
        GroupError::GroupSubscribedToTopic(_) => ResponseError::GroupSubscribedToTopic,
        // Not retriable: Java's consumer raises GroupMaxSizeReachedException.
        GroupError::GroupMaxSizeReached(_) => ResponseError::GroupMaxSizeReached,
        // Retriable: clients look the coordinator up again and retry.
        GroupError::CoordinatorNotAvailable | GroupError::Storage(_) => ResponseError::CoordinatorNotAvailable,
    }
}

pub fn consumer_group_error(error: &ConsumerGroupError) -> ResponseError {
    match error {
        ConsumerGroupError::UnknownMemberId => ResponseError::UnknownMemberId,
        ConsumerGroupError::FencedMemberEpoch { .. } => ResponseError::FencedMemberEpoch,
        ConsumerGroupError::StaleMemberEpoch { .. } => ResponseError::StaleMemberEpoch,
        ConsumerGroupError::UnsupportedAssignor(_) => ResponseError::UnsupportedAssignor,
        ConsumerGroupError::InvalidRequest(_) => ResponseError::InvalidRequest,
        ConsumerGroupError::InvalidRegularExpression(_) => ResponseError::InvalidRegularExpression,
        ConsumerGroupError::GroupIdNotFound(_) | ConsumerGroupError::GroupNotFound(_) => ResponseError::GroupIdNotFound,
        ConsumerGroupError::GroupMaxSizeReached(_) => ResponseError::GroupMaxSizeReached,
        ConsumerGroupError::UnreleasedInstanceId(_) => ResponseError::UnreleasedInstanceId,
        ConsumerGroupError::FencedInstanceId { .. } => ResponseError::FencedInstanceId,
        ConsumerGroupError::UnknownInstanceId(_) => ResponseError::UnknownMemberId,
        ConsumerGroupError::Storage(_) => ResponseError::CoordinatorNotAvailable,
    }
}

/// `fenced_code`: whether the request's version knows PRODUCER_FENCED
/// (KIP-588); older versions get INVALID_PRODUCER_EPOCH, as Kafka answers.
pub fn transaction_error(error: &TransactionError, fenced_code: bool) -> ResponseError {
    match error {
        TransactionError::InvalidProducerIdMapping { .. } => ResponseError::InvalidProducerIdMapping,
        TransactionError::ProducerFenced { .. } if fenced_code => ResponseError::ProducerFenced,
        TransactionError::ProducerFenced { .. } => ResponseError::InvalidProducerEpoch,
        TransactionError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
        TransactionError::ConcurrentTransactions(_) => ResponseError::ConcurrentTransactions,
        TransactionError::UnknownPartitions(_) => ResponseError::UnknownTopicOrPartition,
        TransactionError::NotGroupMember(error) => group_error(error),
        TransactionError::InvalidTransactionTimeout(_) => ResponseError::InvalidTransactionTimeout,
        // Retriable: the client finds the coordinator again and retries.
        TransactionError::Storage(_) => ResponseError::CoordinatorNotAvailable,
    }
}
