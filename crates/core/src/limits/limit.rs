//! The names of the broker's limits: one variant per `[limits]` key, with
//! the key itself (what `/api/v1/limits` and `/metrics` call it). Knows
//! nothing of values or of who enforces each one.

/// One limit, named by the `[limits]` key that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Limit {
    Connections,
    ConnectionsPerAddress,
    ConnectionBuffer,
    KafkaIdle,
    KafkaRequestBytes,
    KafkaMessageBytes,
    FetchBytes,
    AmqpHandshake,
    AmqpChannels,
    AmqpConsumersPerChannel,
    AmqpMessageBytes,
    AmqpTransactionMessages,
    AmqpTransactionBytes,
    HttpHeaderRead,
    Queues,
    Topics,
    PartitionsPerTopic,
    Partitions,
    Groups,
    GroupMembers,
    SegmentBytes,
    SegmentMs,
}

impl Limit {
    pub const ALL: [Limit; 22] = [
        Limit::Connections,
        Limit::ConnectionsPerAddress,
        Limit::ConnectionBuffer,
        Limit::KafkaIdle,
        Limit::KafkaRequestBytes,
        Limit::KafkaMessageBytes,
        Limit::FetchBytes,
        Limit::AmqpHandshake,
        Limit::AmqpChannels,
        Limit::AmqpConsumersPerChannel,
        Limit::AmqpMessageBytes,
        Limit::AmqpTransactionMessages,
        Limit::AmqpTransactionBytes,
        Limit::HttpHeaderRead,
        Limit::Queues,
        Limit::Topics,
        Limit::PartitionsPerTopic,
        Limit::Partitions,
        Limit::Groups,
        Limit::GroupMembers,
        Limit::SegmentBytes,
        Limit::SegmentMs,
    ];

    /// The `[limits]` key, also the `limit` label of
    /// `conveyor_limit_reached_total` and the name in `/api/v1/limits`.
    pub fn key(self) -> &'static str {
        match self {
            Limit::Connections => "connections_max",
            Limit::ConnectionsPerAddress => "connections_per_address_max",
            Limit::ConnectionBuffer => "connection_buffer_bytes_max",
            Limit::KafkaIdle => "kafka_connections_max_idle_ms",
            Limit::KafkaRequestBytes => "kafka_request_bytes_max",
            Limit::KafkaMessageBytes => "kafka_message_bytes_max",
            Limit::FetchBytes => "fetch_max_bytes",
            Limit::AmqpHandshake => "amqp_handshake_timeout_ms",
            Limit::AmqpChannels => "amqp_channel_max",
            Limit::AmqpConsumersPerChannel => "amqp_consumers_per_channel_max",
            Limit::AmqpMessageBytes => "amqp_message_bytes_max",
            Limit::AmqpTransactionMessages => "amqp_transaction_messages_max",
            Limit::AmqpTransactionBytes => "amqp_transaction_bytes_max",
            Limit::HttpHeaderRead => "http_header_read_timeout_ms",
            Limit::Queues => "queues_max",
            Limit::Topics => "topics_max",
            Limit::PartitionsPerTopic => "partitions_per_topic_max",
            Limit::Partitions => "partitions_max",
            Limit::Groups => "groups_max",
            Limit::GroupMembers => "group_members_max",
            Limit::SegmentBytes => "segment_bytes_min",
            Limit::SegmentMs => "segment_ms_min",
        }
    }

    /// Position in [`Limit::ALL`], for counters kept in an array.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_is_listed_once_in_declaration_order() {
        for (position, limit) in Limit::ALL.iter().enumerate() {
            assert_eq!(limit.index(), position, "{limit:?}");
        }
        let mut keys: Vec<&str> = Limit::ALL.iter().map(|limit| limit.key()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), Limit::ALL.len(), "keys are unique");
    }
}
