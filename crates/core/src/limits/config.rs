//! The values of the broker's limits and their defaults, chosen to be what
//! a Kafka or RabbitMQ user expects where those brokers have the same limit
//! (their names in the comments). Plain numbers: who enforces each one is
//! written in `limits/mod.rs`.

use super::limit::Limit;

const MIB: u64 = 1024 * 1024;

/// Every limit's value (`[limits]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Open client connections, Kafka, AMQP and HTTP together (Kafka's
    /// `max.connections`, RabbitMQ's `connection_max`).
    pub connections_max: u32,
    /// Open client connections from one source address (Kafka's `max.connections.per.ip`).
    pub connections_per_address_max: u32,
    /// Bytes one connection may have sent that are not stored yet (Kafka
    /// requests not answered, AMQP bodies being reassembled, publishes not
    /// confirmed, uncommitted transactions), and Fetch response bytes
    /// waiting for the socket; past it the broker stops reading the
    /// connection until some are stored or sent.
    pub connection_buffer_bytes_max: u64,
    /// Kafka's `connections.max.idle.ms`: a connection with no request and
    /// nothing in flight for this long is closed.
    pub kafka_connections_max_idle_ms: u64,
    /// Kafka's `socket.request.max.bytes`: the largest request frame.
    pub kafka_request_bytes_max: u64,
    /// Kafka's `message.max.bytes`: the default of topics' `max.message.bytes`.
    pub kafka_message_bytes_max: u64,
    /// Kafka's broker-side `fetch.max.bytes`: the most one Fetch response carries.
    pub fetch_max_bytes: u64,
    /// Kafka's `group.consumer.session.timeout.ms`: a KIP-848 consumer-group
    /// member with no heartbeat for this long is removed.
    pub group_consumer_session_timeout_ms: u64,
    /// Kafka's `group.consumer.heartbeat.interval.ms`: how often KIP-848
    /// members are told to heartbeat.
    pub group_consumer_heartbeat_interval_ms: u64,
    /// RabbitMQ's `handshake_timeout`: from accepting an AMQP connection to `connection.open`.
    pub amqp_handshake_timeout_ms: u64,
    /// RabbitMQ's `consumer_timeout`: a delivery unacknowledged this long
    /// closes its channel with 406 PRECONDITION_FAILED, and the deliveries
    /// the channel held go back to the queue. A queue's `x-consumer-timeout`
    /// overrides it.
    pub amqp_consumer_timeout_ms: u64,
    /// RabbitMQ's `channel_max`, offered in `connection.tune`.
    pub amqp_channel_max: u16,
    /// RabbitMQ's `consumer_max_per_channel`.
    pub amqp_consumers_per_channel_max: u32,
    /// RabbitMQ's `max_message_size` (its 3.x default; 4.x lowered it to 16 MiB).
    pub amqp_message_bytes_max: u64,
    /// Publishes one AMQP transaction may hold before `tx.commit`.
    pub amqp_transaction_messages_max: u32,
    /// Body bytes one AMQP transaction may hold before `tx.commit`.
    pub amqp_transaction_bytes_max: u64,
    /// How long an HTTP client may take to send a request's headers (slowloris).
    pub http_header_read_timeout_ms: u64,
    /// Queues, durable or not, in every vhost.
    pub queues_max: u32,
    /// Kafka topics.
    pub topics_max: u32,
    /// Partitions of one topic.
    pub partitions_per_topic_max: u32,
    /// Partitions of every topic together.
    pub partitions_max: u32,
    /// Kafka consumer groups with members or being joined.
    pub groups_max: u32,
    /// Kafka's `group.max.size`: members of one consumer group.
    pub group_members_max: u32,
    /// The smallest `segment.bytes` a topic may set (Kafka 4.0's minimum, KIP-1030).
    pub segment_bytes_min: u64,
    /// The smallest `segment.ms` a topic may set.
    pub segment_ms_min: u64,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            connections_max: 10_000,
            connections_per_address_max: 1_000,
            connection_buffer_bytes_max: 256 * MIB,
            kafka_connections_max_idle_ms: 600_000,
            kafka_request_bytes_max: 100 * MIB,
            kafka_message_bytes_max: crate::topic_config::MAX_MESSAGE_BYTES_DEFAULT,
            fetch_max_bytes: 55 * MIB,
            amqp_handshake_timeout_ms: 10_000,
            // RabbitMQ's default: 30 minutes.
            amqp_consumer_timeout_ms: 30 * 60 * 1000,
            amqp_channel_max: 2047,
            amqp_consumers_per_channel_max: 1_000,
            amqp_message_bytes_max: 128 * MIB,
            amqp_transaction_messages_max: 100_000,
            amqp_transaction_bytes_max: 128 * MIB,
            http_header_read_timeout_ms: 30_000,
            queues_max: 50_000,
            topics_max: 10_000,
            partitions_per_topic_max: 1_000,
            partitions_max: 20_000,
            groups_max: 10_000,
            group_members_max: 1_000,
            segment_bytes_min: MIB,
            segment_ms_min: 60_000,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_heartbeat_interval_ms: 5_000,
        }
    }
}

impl LimitsConfig {
    /// The value of `limit`, as a number.
    pub fn value(&self, limit: Limit) -> u64 {
        match limit {
            Limit::Connections => self.connections_max.into(),
            Limit::ConnectionsPerAddress => self.connections_per_address_max.into(),
            Limit::ConnectionBuffer => self.connection_buffer_bytes_max,
            Limit::KafkaIdle => self.kafka_connections_max_idle_ms,
            Limit::KafkaRequestBytes => self.kafka_request_bytes_max,
            Limit::KafkaMessageBytes => self.kafka_message_bytes_max,
            Limit::FetchBytes => self.fetch_max_bytes,
            Limit::AmqpHandshake => self.amqp_handshake_timeout_ms,
            Limit::AmqpChannels => self.amqp_channel_max.into(),
            Limit::AmqpConsumersPerChannel => self.amqp_consumers_per_channel_max.into(),
            Limit::AmqpMessageBytes => self.amqp_message_bytes_max,
            Limit::AmqpTransactionMessages => self.amqp_transaction_messages_max.into(),
            Limit::AmqpTransactionBytes => self.amqp_transaction_bytes_max,
            Limit::HttpHeaderRead => self.http_header_read_timeout_ms,
            Limit::Queues => self.queues_max.into(),
            Limit::Topics => self.topics_max.into(),
            Limit::PartitionsPerTopic => self.partitions_per_topic_max.into(),
            Limit::Partitions => self.partitions_max.into(),
            Limit::Groups => self.groups_max.into(),
            Limit::GroupMembers => self.group_members_max.into(),
            Limit::SegmentBytes => self.segment_bytes_min,
            Limit::SegmentMs => self.segment_ms_min,
        }
    }

    /// Refuses values that would make the broker unusable (zero
    /// connections, a segment floor above the log's 2 GiB segments).
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            Limit::Connections,
            Limit::ConnectionsPerAddress,
            Limit::ConnectionBuffer,
            Limit::KafkaIdle,
            Limit::KafkaRequestBytes,
            Limit::FetchBytes,
            Limit::AmqpHandshake,
            Limit::AmqpChannels,
            Limit::AmqpMessageBytes,
            Limit::HttpHeaderRead,
            Limit::PartitionsPerTopic,
            Limit::Partitions,
        ];
        for limit in positive {
            if self.value(limit) == 0 {
                return Err(format!("limits.{} must be at least 1", limit.key()));
            }
        }
        if self.segment_bytes_min > i32::MAX as u64 {
            return Err(format!("limits.segment_bytes_min must be at most {}", i32::MAX));
        }
        if self.fetch_max_bytes > i32::MAX as u64 {
            return Err(format!("limits.fetch_max_bytes must be at most {}", i32::MAX));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_kafka_and_rabbitmq_ones_and_valid() {
        let limits = LimitsConfig::default();
        assert_eq!(limits.fetch_max_bytes, 57_671_680, "Kafka's fetch.max.bytes");
        assert_eq!(limits.kafka_connections_max_idle_ms, 600_000, "Kafka's connections.max.idle.ms");
        assert_eq!(limits.segment_bytes_min, 1_048_576, "Kafka 4.0's segment.bytes minimum");
        assert_eq!(limits.amqp_handshake_timeout_ms, 10_000, "RabbitMQ's handshake_timeout");
        assert_eq!(limits.amqp_channel_max, 2047, "RabbitMQ's channel_max");
        assert_eq!(limits.validate(), Ok(()));
        let zero = LimitsConfig {
            connections_max: 0,
            ..LimitsConfig::default()
        };
        assert!(zero.validate().is_err_and(|error| error.contains("connections_max")));
    }
}
