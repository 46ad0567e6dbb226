//! Per-group configs (Kafka's `GroupConfig`, KIP-848 and KIP-932): the keys
//! a group may override, their defaults (the broker's settings), Kafka's
//! validation with its messages, and the typed settings the coordinators
//! use. Knows no wire format, no catalog and no group state: the broker
//! keeps the overrides in the catalog and hands the settings down.

use std::collections::BTreeMap;

use crate::queue::CursorStart;
use crate::share_group::IsolationLevel;

/// The keys a group may set.
pub mod keys {
    pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
    pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";
    pub const SHARE_SESSION_TIMEOUT_MS: &str = "share.session.timeout.ms";
    pub const SHARE_HEARTBEAT_INTERVAL_MS: &str = "share.heartbeat.interval.ms";
    pub const SHARE_RECORD_LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";
    pub const SHARE_AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";
    pub const SHARE_ISOLATION_LEVEL: &str = "share.isolation.level";
    pub const SHARE_DELIVERY_COUNT_LIMIT: &str = "share.delivery.count.limit";
    pub const SHARE_PARTITION_MAX_RECORD_LOCKS: &str = "share.partition.max.record.locks";
}

/// Every key, sorted (DescribeConfigs lists them in this order).
pub const KEYS: [&str; 9] = [
    keys::CONSUMER_HEARTBEAT_INTERVAL_MS,
    keys::CONSUMER_SESSION_TIMEOUT_MS,
    keys::SHARE_AUTO_OFFSET_RESET,
    keys::SHARE_DELIVERY_COUNT_LIMIT,
    keys::SHARE_HEARTBEAT_INTERVAL_MS,
    keys::SHARE_ISOLATION_LEVEL,
    keys::SHARE_PARTITION_MAX_RECORD_LOCKS,
    keys::SHARE_RECORD_LOCK_DURATION_MS,
    keys::SHARE_SESSION_TIMEOUT_MS,
];

/// Why a group config change was refused (Kafka's INVALID_CONFIG messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupConfigError {
    #[error("Unknown group config name: {0}")]
    UnknownKey(String),
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidValue { key: String, value: String, reason: String },
    /// A value outside the broker's bounds, or a session no longer than
    /// its heartbeat interval.
    #[error("{0}")]
    OutOfBounds(String),
}

/// The broker-wide defaults groups inherit, with the bounds a group's own
/// value must stay within (Kafka's `group.consumer.*`, `group.share.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfigDefaults {
    pub consumer_session_timeout_ms: i64,
    pub consumer_heartbeat_interval_ms: i64,
    pub share_session_timeout_ms: i64,
    pub share_heartbeat_interval_ms: i64,
    pub share_record_lock_duration_ms: i64,
    /// `group.share.delivery.count.limit`.
    pub share_delivery_count_limit: i64,
    /// `group.share.partition.max.record.locks`.
    pub share_partition_max_record_locks: i64,
}

impl Default for GroupConfigDefaults {
    fn default() -> GroupConfigDefaults {
        GroupConfigDefaults {
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            share_session_timeout_ms: crate::share_group::SESSION_TIMEOUT_MS_DEFAULT,
            share_heartbeat_interval_ms: crate::share_group::HEARTBEAT_INTERVAL_MS_DEFAULT,
            share_record_lock_duration_ms: crate::share_group::RECORD_LOCK_DURATION_MS_DEFAULT,
            share_delivery_count_limit: i64::from(crate::share_group::DELIVERY_COUNT_LIMIT_DEFAULT),
            share_partition_max_record_locks: i64::try_from(crate::share_group::RECORD_LOCKS_MAX_DEFAULT).unwrap_or(i64::MAX),
        }
    }
}

/// One integer key: its default, Kafka's bounds (widened to take in the
/// broker's own default, which `conveyor serve` may set lower for tests)
/// and the broker settings that name the bounds.
struct Bounded {
    default: i64,
    min: i64,
    max: i64,
    min_name: &'static str,
    max_name: &'static str,
}

impl GroupConfigDefaults {
    fn bounded(&self, key: &str) -> Option<Bounded> {
        let (default, min, max, min_name, max_name) = match key {
            keys::CONSUMER_SESSION_TIMEOUT_MS => (
                self.consumer_session_timeout_ms,
                45_000,
                60_000,
                "group.consumer.min.session.timeout.ms",
                "group.consumer.max.session.timeout.ms",
            ),
            keys::CONSUMER_HEARTBEAT_INTERVAL_MS => (
                self.consumer_heartbeat_interval_ms,
                5_000,
                15_000,
                "group.consumer.min.heartbeat.interval.ms",
                "group.consumer.max.heartbeat.interval.ms",
            ),
            keys::SHARE_SESSION_TIMEOUT_MS => (
                self.share_session_timeout_ms,
                45_000,
                60_000,
                "group.share.min.session.timeout.ms",
                "group.share.max.session.timeout.ms",
            ),
            keys::SHARE_HEARTBEAT_INTERVAL_MS => (
                self.share_heartbeat_interval_ms,
                5_000,
                15_000,
                "group.share.min.heartbeat.interval.ms",
                "group.share.max.heartbeat.interval.ms",
            ),
            keys::SHARE_RECORD_LOCK_DURATION_MS => (
                self.share_record_lock_duration_ms,
                15_000,
                60_000,
                "group.share.min.record.lock.duration.ms",
                "group.share.max.record.lock.duration.ms",
            ),
            keys::SHARE_DELIVERY_COUNT_LIMIT => (
                self.share_delivery_count_limit,
                2,
                10,
                "group.share.min.delivery.count.limit",
                "group.share.max.delivery.count.limit",
            ),
            keys::SHARE_PARTITION_MAX_RECORD_LOCKS => (
                self.share_partition_max_record_locks,
                100,
                10_000,
                "group.share.min.partition.max.record.locks",
                "group.share.max.partition.max.record.locks",
            ),
            _ => return None,
        };
        Some(Bounded {
            default,
            min: min.min(default),
            max: max.max(default),
            min_name,
            max_name,
        })
    }

    /// The value `key` has without an override.
    pub fn default_value(&self, key: &str) -> Option<String> {
        match key {
            keys::SHARE_AUTO_OFFSET_RESET => Some("latest".to_owned()),
            keys::SHARE_ISOLATION_LEVEL => Some(IsolationLevel::default().name().to_owned()),
            _ => self.bounded(key).map(|bounded| bounded.default.to_string()),
        }
    }

    /// `overrides` with `changes` applied (`None` removes a key), checked
    /// as Kafka's `GroupConfig.validate` checks them: known names, values
    /// that parse, bounds, and each session longer than its heartbeat
    /// interval.
    pub fn with_changes(
        &self,
        overrides: &BTreeMap<String, String>,
        changes: &[(String, Option<String>)],
    ) -> Result<BTreeMap<String, String>, GroupConfigError> {
        let mut merged = overrides.clone();
        for (key, value) in changes {
            if !KEYS.contains(&key.as_str()) {
                return Err(GroupConfigError::UnknownKey(key.clone()));
            }
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        for (key, value) in &merged {
            self.check(key, value)?;
        }
        let settings = self.settings(&merged);
        if settings.consumer_session_timeout_ms <= settings.consumer_heartbeat_interval_ms {
            return Err(GroupConfigError::OutOfBounds(format!(
                "{} must be greater than {}",
                keys::CONSUMER_SESSION_TIMEOUT_MS,
                keys::CONSUMER_HEARTBEAT_INTERVAL_MS
            )));
        }
        if settings.share_session_timeout_ms <= settings.share_heartbeat_interval_ms {
            return Err(GroupConfigError::OutOfBounds(format!(
                "{} must be greater than {}",
                keys::SHARE_SESSION_TIMEOUT_MS,
                keys::SHARE_HEARTBEAT_INTERVAL_MS
            )));
        }
        Ok(merged)
    }

    fn check(&self, key: &str, value: &str) -> Result<(), GroupConfigError> {
        let invalid = |reason: &str| GroupConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        match key {
            keys::SHARE_AUTO_OFFSET_RESET => match value {
                "earliest" | "latest" => Ok(()),
                _ => Err(invalid("String must be one of: earliest, latest")),
            },
            keys::SHARE_ISOLATION_LEVEL => match IsolationLevel::parse(value) {
                Some(_) => Ok(()),
                None => Err(invalid("String must be one of: read_committed, read_uncommitted")),
            },
            _ => {
                let bounded = self.bounded(key).ok_or_else(|| GroupConfigError::UnknownKey(key.to_owned()))?;
                let number: i32 = value.trim().parse().map_err(|_| invalid("Not a number of type INT"))?;
                let number = i64::from(number);
                if number < bounded.min {
                    return Err(GroupConfigError::OutOfBounds(format!(
                        "{key} must be greater than or equal to {}",
                        bounded.min_name
                    )));
                }
                if number > bounded.max {
                    return Err(GroupConfigError::OutOfBounds(format!(
                        "{key} must be less than or equal to {}",
                        bounded.max_name
                    )));
                }
                Ok(())
            }
        }
    }

    /// What a group with `overrides` (already validated) runs with.
    pub fn settings(&self, overrides: &BTreeMap<String, String>) -> GroupSettings {
        let number = |key: &str, default: i64| {
            overrides
                .get(key)
                .and_then(|value| value.trim().parse::<i64>().ok())
                .unwrap_or(default)
        };
        GroupSettings {
            consumer_session_timeout_ms: number(keys::CONSUMER_SESSION_TIMEOUT_MS, self.consumer_session_timeout_ms),
            consumer_heartbeat_interval_ms: number(keys::CONSUMER_HEARTBEAT_INTERVAL_MS, self.consumer_heartbeat_interval_ms),
            share_session_timeout_ms: number(keys::SHARE_SESSION_TIMEOUT_MS, self.share_session_timeout_ms),
            share_heartbeat_interval_ms: number(keys::SHARE_HEARTBEAT_INTERVAL_MS, self.share_heartbeat_interval_ms),
            share_record_lock_duration_ms: number(keys::SHARE_RECORD_LOCK_DURATION_MS, self.share_record_lock_duration_ms),
            share_delivery_count_limit: number(keys::SHARE_DELIVERY_COUNT_LIMIT, self.share_delivery_count_limit),
            share_partition_max_record_locks: number(keys::SHARE_PARTITION_MAX_RECORD_LOCKS, self.share_partition_max_record_locks),
            share_auto_offset_reset: match overrides.get(keys::SHARE_AUTO_OFFSET_RESET).map(String::as_str) {
                Some("earliest") => CursorStart::Earliest,
                _ => CursorStart::Latest,
            },
            share_isolation_level: overrides
                .get(keys::SHARE_ISOLATION_LEVEL)
                .and_then(|value| IsolationLevel::parse(value))
                .unwrap_or_default(),
        }
    }
}

/// What one group runs with: its overrides over the broker's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSettings {
    pub consumer_session_timeout_ms: i64,
    pub consumer_heartbeat_interval_ms: i64,
    pub share_session_timeout_ms: i64,
    pub share_heartbeat_interval_ms: i64,
    pub share_record_lock_duration_ms: i64,
    /// A record is delivered at most this many times, then archived.
    pub share_delivery_count_limit: i64,
    /// At most this many records between a share-partition's start and its
    /// newest acquired record.
    pub share_partition_max_record_locks: i64,
    pub share_auto_offset_reset: CursorStart,
    pub share_isolation_level: IsolationLevel,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, value: Option<&str>) -> (String, Option<String>) {
        (key.to_owned(), value.map(str::to_owned))
    }

    #[test]
    fn changes_are_checked_with_kafkas_messages_and_a_valid_one_is_used() {
        let defaults = GroupConfigDefaults::default();
        let none = BTreeMap::new();
        let refused = |changes: &[(String, Option<String>)]| defaults.with_changes(&none, changes).expect_err("refused").to_string();
        assert_eq!(refused(&[change("no.such", Some("1"))]), "Unknown group config name: no.such");
        assert_eq!(
            refused(&[change(keys::SHARE_RECORD_LOCK_DURATION_MS, Some("1000"))]),
            "share.record.lock.duration.ms must be greater than or equal to group.share.min.record.lock.duration.ms"
        );
        assert_eq!(
            refused(&[change(keys::CONSUMER_SESSION_TIMEOUT_MS, Some("90000"))]),
            "consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms"
        );
        assert_eq!(
            refused(&[change(keys::SHARE_HEARTBEAT_INTERVAL_MS, Some("ten"))]),
            "Invalid value ten for configuration share.heartbeat.interval.ms: Not a number of type INT"
        );
        assert_eq!(
            refused(&[change(keys::SHARE_ISOLATION_LEVEL, Some("read_nothing"))]),
            "Invalid value read_nothing for configuration share.isolation.level: String must be one of: read_committed, read_uncommitted"
        );
        let set = defaults
            .with_changes(
                &none,
                &[
                    change(keys::SHARE_RECORD_LOCK_DURATION_MS, Some("15000")),
                    change(keys::SHARE_ISOLATION_LEVEL, Some("read_committed")),
                    change(keys::SHARE_AUTO_OFFSET_RESET, Some("earliest")),
                ],
            )
            .expect("valid");
        let settings = defaults.settings(&set);
        assert_eq!(
            (
                settings.share_record_lock_duration_ms,
                settings.share_isolation_level,
                settings.share_auto_offset_reset,
                settings.share_session_timeout_ms
            ),
            (15_000, IsolationLevel::ReadCommitted, CursorStart::Earliest, 45_000)
        );
        let reset = defaults
            .with_changes(&set, &[change(keys::SHARE_ISOLATION_LEVEL, None)])
            .expect("delete");
        assert_eq!(defaults.settings(&reset).share_isolation_level, IsolationLevel::ReadUncommitted);
    }

    #[test]
    fn a_groups_delivery_count_limit_and_record_locks_stay_within_kafkas_bounds() {
        let defaults = GroupConfigDefaults::default();
        let none = BTreeMap::new();
        let refused = |key: &str, value: &str| {
            defaults
                .with_changes(&none, &[change(key, Some(value))])
                .expect_err("refused")
                .to_string()
        };
        for (key, value, bound) in [
            (
                keys::SHARE_DELIVERY_COUNT_LIMIT,
                "1",
                "greater than or equal to group.share.min.delivery.count.limit",
            ),
            (
                keys::SHARE_DELIVERY_COUNT_LIMIT,
                "11",
                "less than or equal to group.share.max.delivery.count.limit",
            ),
            (
                keys::SHARE_PARTITION_MAX_RECORD_LOCKS,
                "99",
                "greater than or equal to group.share.min.partition.max.record.locks",
            ),
            (
                keys::SHARE_PARTITION_MAX_RECORD_LOCKS,
                "10001",
                "less than or equal to group.share.max.partition.max.record.locks",
            ),
        ] {
            assert_eq!(refused(key, value), format!("{key} must be {bound}"));
        }
        assert_eq!(
            (
                defaults.default_value(keys::SHARE_DELIVERY_COUNT_LIMIT),
                defaults.default_value(keys::SHARE_PARTITION_MAX_RECORD_LOCKS)
            ),
            (Some("5".to_owned()), Some("2000".to_owned()))
        );
        let set = defaults
            .with_changes(
                &none,
                &[
                    change(keys::SHARE_DELIVERY_COUNT_LIMIT, Some("2")),
                    change(keys::SHARE_PARTITION_MAX_RECORD_LOCKS, Some("100")),
                ],
            )
            .expect("valid");
        let settings = defaults.settings(&set);
        assert_eq!(
            (settings.share_delivery_count_limit, settings.share_partition_max_record_locks),
            (2, 100)
        );
    }

    #[test]
    fn a_broker_default_outside_kafkas_bounds_widens_them_and_sessions_must_outlast_heartbeats() {
        let defaults = GroupConfigDefaults {
            consumer_session_timeout_ms: 3_000,
            consumer_heartbeat_interval_ms: 500,
            ..GroupConfigDefaults::default()
        };
        let none = BTreeMap::new();
        assert!(
            defaults
                .with_changes(&none, &[change(keys::CONSUMER_SESSION_TIMEOUT_MS, Some("3000"))])
                .is_ok()
        );
        assert_eq!(
            defaults
                .with_changes(&none, &[change(keys::CONSUMER_HEARTBEAT_INTERVAL_MS, Some("4000"))])
                .expect_err("longer than the session")
                .to_string(),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
    }
}
