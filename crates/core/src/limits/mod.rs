//! The broker's limits: how many connections, channels, consumers, queues,
//! topics, partitions, groups and members may exist, how large a request, a
//! message, a transaction or a Fetch response may be, how small a segment,
//! and how long a handshake or an idle Kafka connection may last. This
//! module holds the values (`config.rs`), counts open connections per
//! source address (`connection_slots.rs`), and counts every time a limit
//! is reached, for `/metrics`. It knows no wire format: whoever hits a
//! limit gets a [`LimitReached`] and each front door answers with its
//! protocol's error (the README's table lists them).
//!
//! Where each is enforced: connections at accept (every listener);
//! queues, topics, partitions and the segment floors in the core
//! (`Broker`, `topic_config.rs`); groups and members in the group
//! coordinator; the rest in the front door the limit is named after.

mod config;
mod connection_slots;
mod limit;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use config::LimitsConfig;
pub use connection_slots::ConnectionSlot;
use connection_slots::ConnectionSlots;
pub use limit::Limit;
use tracing::debug;

use crate::error::CoreError;
use crate::topic_config::{ConfigError, keys};

/// A limit was reached: what was asked for is refused (or, for timeouts,
/// the connection closed). The text says which limit and its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text} (limit {key} = {max})", key = limit.key())]
pub struct LimitReached {
    pub limit: Limit,
    pub max: u64,
    pub text: String,
}

/// The limits in force and how often each was reached.
#[derive(Debug)]
pub struct Limits {
    config: LimitsConfig,
    reached: [AtomicU64; Limit::ALL.len()],
    connections: Arc<ConnectionSlots>,
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Limits {
        let connections = Arc::new(ConnectionSlots::new(config.connections_max, config.connections_per_address_max));
        Limits {
            config,
            reached: std::array::from_fn(|_| AtomicU64::new(0)),
            connections,
        }
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// Counts that `limit` was reached and returns the refusal to answer
    /// with; `text` says what was refused.
    pub fn reach(&self, limit: Limit, text: impl Into<String>) -> LimitReached {
        self.reached[limit.index()].fetch_add(1, Ordering::Relaxed);
        let reached = LimitReached {
            limit,
            max: self.config.value(limit),
            text: text.into(),
        };
        debug!(limit = limit.key(), max = reached.max, text = reached.text, "limit reached");
        reached
    }

    /// How many times `limit` was reached since the process started.
    pub fn reached_total(&self, limit: Limit) -> u64 {
        self.reached[limit.index()].load(Ordering::Relaxed)
    }

    /// Refuses `adding` more of what `limit` counts when `current` already exist.
    pub fn check_count(&self, limit: Limit, current: u64, adding: u64, what: &str) -> Result<(), LimitReached> {
        let max = self.config.value(limit);
        if current.saturating_add(adding) > max {
            return Err(self.reach(
                limit,
                format!("{what}: {current} exist and {adding} more would pass the limit of {max}"),
            ));
        }
        Ok(())
    }

    /// Refuses a topic's `segment.bytes` or `segment.ms` below its floor, as
    /// an invalid value of that config (Kafka's INVALID_CONFIG). Topics that
    /// set a smaller value before the floor existed keep it.
    pub fn check_topic_configs<'a>(&self, configs: impl Iterator<Item = (&'a String, &'a String)>) -> Result<(), CoreError> {
        for (key, value) in configs {
            let (limit, min) = match key.as_str() {
                keys::SEGMENT_BYTES => (Limit::SegmentBytes, self.config.segment_bytes_min),
                keys::SEGMENT_MS => (Limit::SegmentMs, self.config.segment_ms_min),
                _ => continue,
            };
            let below = value
                .trim()
                .parse::<i64>()
                .map_or(true, |number| number < 0 || (number as u64) < min);
            if below {
                self.reach(limit, format!("topic config {key}={value} refused"));
                return Err(CoreError::InvalidConfig(ConfigError::InvalidValue {
                    key: key.clone(),
                    value: value.clone(),
                    reason: format!("must be at least {min} (limit {})", limit.key()),
                }));
            }
        }
        Ok(())
    }

    /// A slot for a connection just accepted from `address`, held while it
    /// is open; refused past `connections_max` or `connections_per_address_max`.
    pub fn admit_connection(&self, address: IpAddr) -> Result<ConnectionSlot, LimitReached> {
        self.connections.admit(address).map_err(|limit| {
            let text = match limit {
                Limit::ConnectionsPerAddress => format!("connection from {address} refused: too many connections from that address"),
                _ => format!("connection from {address} refused: too many connections"),
            };
            self.reach(limit, text)
        })
    }

    /// Connections holding a slot now.
    pub fn open_connections(&self) -> u64 {
        self.connections.open()
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::new(LimitsConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_past_its_limit_is_refused_and_counted() {
        let limits = Limits::new(LimitsConfig {
            queues_max: 2,
            ..LimitsConfig::default()
        });
        assert_eq!(limits.check_count(Limit::Queues, 1, 1, "queue \"a\""), Ok(()));
        let refused = limits.check_count(Limit::Queues, 2, 1, "queue \"b\"").expect_err("over");
        assert_eq!((refused.limit, refused.max), (Limit::Queues, 2));
        assert!(refused.to_string().contains("queues_max = 2"), "{refused}");
        assert_eq!(limits.reached_total(Limit::Queues), 1);
        assert_eq!(limits.reached_total(Limit::Topics), 0);
    }

    #[test]
    fn segments_below_the_floors_are_invalid_configs() {
        let limits = Limits::default();
        let pair = |key: &str, value: &str| (key.to_owned(), value.to_owned());
        for (key, value) in [pair("segment.bytes", "14"), pair("segment.ms", "1"), pair("segment.bytes", "-1")] {
            let refused = limits.check_topic_configs([(&key, &value)].into_iter());
            assert!(
                matches!(refused, Err(CoreError::InvalidConfig(ConfigError::InvalidValue { .. }))),
                "{key}={value}: {refused:?}"
            );
        }
        assert_eq!(limits.reached_total(Limit::SegmentBytes), 2);
        assert_eq!(limits.reached_total(Limit::SegmentMs), 1);
        for (key, value) in [
            pair("segment.bytes", "1048576"),
            pair("segment.ms", "600000"),
            pair("retention.ms", "1"),
        ] {
            assert!(limits.check_topic_configs([(&key, &value)].into_iter()).is_ok(), "{key}={value}");
        }
    }
}
