//! Topic configuration: the Kafka config names Conveyor understands, their
//! validation, and how they map onto the log's settings. Explicitly set keys
//! are stored; everything else comes from the broker's defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use conveyor_log::{CompactionConfig, Durability, LogConfig};

/// Kafka's default `max.message.bytes` (1 MiB plus batch overhead).
pub const MAX_MESSAGE_BYTES_DEFAULT: u64 = 1_048_588;

/// Kafka's default `min.insync.replicas`.
pub const MIN_INSYNC_REPLICAS_DEFAULT: u16 = 1;

/// The config keys a topic accepts.
pub mod keys {
    pub const RETENTION_MS: &str = "retention.ms";
    pub const RETENTION_BYTES: &str = "retention.bytes";
    pub const SEGMENT_BYTES: &str = "segment.bytes";
    pub const SEGMENT_MS: &str = "segment.ms";
    pub const INDEX_INTERVAL_BYTES: &str = "index.interval.bytes";
    pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
    pub const CLEANUP_POLICY: &str = "cleanup.policy";
    pub const DELETE_RETENTION_MS: &str = "delete.retention.ms";
    pub const MIN_COMPACTION_LAG_MS: &str = "min.compaction.lag.ms";
    pub const MAX_COMPACTION_LAG_MS: &str = "max.compaction.lag.ms";
    pub const MIN_CLEANABLE_DIRTY_RATIO: &str = "min.cleanable.dirty.ratio";
    pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
    /// Kafka's: the in-sync replicas an `acks=all` write needs (on a
    /// cluster node's replicated partitions; a single node ignores it).
    pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
    /// Conveyor's own: `always`, `interval:<ms>` or `never` (see the log's `Durability`).
    pub const DURABILITY: &str = "durability";
}

/// Every key a topic accepts, in the order DescribeConfigs lists them.
pub const SUPPORTED_KEYS: &[&str] = &[
    keys::CLEANUP_POLICY,
    keys::DELETE_RETENTION_MS,
    keys::DURABILITY,
    keys::INDEX_INTERVAL_BYTES,
    keys::MAX_COMPACTION_LAG_MS,
    keys::MAX_MESSAGE_BYTES,
    keys::MESSAGE_TIMESTAMP_TYPE,
    keys::MIN_CLEANABLE_DIRTY_RATIO,
    keys::MIN_COMPACTION_LAG_MS,
    keys::MIN_INSYNC_REPLICAS,
    keys::RETENTION_BYTES,
    keys::RETENTION_MS,
    keys::SEGMENT_BYTES,
    keys::SEGMENT_MS,
];

/// A config key or value a topic cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown topic config {0:?}")]
    UnknownKey(String),
    #[error("invalid value {value:?} for config {key}: {reason}")]
    InvalidValue { key: String, value: String, reason: String },
}

/// Broker-wide defaults that topics inherit.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDefaults {
    pub log: LogConfig,
    pub max_message_bytes: u64,
    /// Kafka's `log.cleaner.delete.retention.ms`, `log.cleaner.min.compaction.lag.ms`,
    /// `log.cleaner.max.compaction.lag.ms` and `log.cleaner.min.cleanable.ratio`.
    pub compaction: CompactionConfig,
    /// Kafka's broker `min.insync.replicas`: the default of topics' own.
    pub min_insync_replicas: u16,
}

impl Default for TopicDefaults {
    fn default() -> TopicDefaults {
        TopicDefaults {
            log: LogConfig::default(),
            max_message_bytes: MAX_MESSAGE_BYTES_DEFAULT,
            compaction: CompactionConfig::default(),
            min_insync_replicas: MIN_INSYNC_REPLICAS_DEFAULT,
        }
    }
}

/// What happens to old records (`cleanup.policy`): deleted by time and size
/// retention, compacted to the latest record per key, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    /// Parses Kafka's list: `delete`, `compact`, `compact,delete` or `delete,compact`.
    pub fn parse(value: &str) -> Option<CleanupPolicy> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for item in value.split(',').map(str::trim) {
            match item {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        Some(policy)
    }
}

impl std::fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => f.write_str("compact,delete"),
            (true, false) => f.write_str("compact"),
            _ => f.write_str("delete"),
        }
    }
}

/// One effective config value, as DescribeConfigs and the admin API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: String,
    /// True when the value comes from the broker's defaults, not the topic.
    pub is_default: bool,
}

/// Whether record timestamps are the producer's or the broker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The explicitly set configs of one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
}

impl TopicConfig {
    /// Validates every entry; the first bad one is the error.
    pub fn new(overrides: BTreeMap<String, String>) -> Result<TopicConfig, ConfigError> {
        for (key, value) in &overrides {
            validate(key, value)?;
        }
        Ok(TopicConfig { overrides })
    }

    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// A copy with `changes` applied: `Some` sets a key, `None` removes it
    /// (back to the default).
    pub fn with_changes(&self, changes: &BTreeMap<String, Option<String>>) -> Result<TopicConfig, ConfigError> {
        let mut overrides = self.overrides.clone();
        for (key, value) in changes {
            match value {
                Some(value) => {
                    validate(key, value)?;
                    overrides.insert(key.clone(), value.clone());
                }
                None => {
                    if !SUPPORTED_KEYS.contains(&key.as_str()) {
                        return Err(ConfigError::UnknownKey(key.clone()));
                    }
                    overrides.remove(key);
                }
            }
        }
        Ok(TopicConfig { overrides })
    }

    /// The log settings of this topic's partitions. Time and size retention
    /// apply only when the cleanup policy includes `delete` (a topic that is
    /// only `compact` keeps every key's latest record forever, as in Kafka).
    /// On a compacted topic the active segment rolls at the latest after
    /// `max.compaction.lag.ms` (Kafka's `LogConfig.maxSegmentMs`: the smaller
    /// of it and `segment.ms`), since the cleaner never touches the active
    /// segment and a record older than the lag must be compactable.
    pub fn log_config(&self, defaults: &TopicDefaults) -> LogConfig {
        let mut log = self.configured_log(defaults);
        if !self.cleanup_policy().delete {
            log.retention_ms = None;
            log.retention_bytes = None;
        }
        if let Some(compaction) = self.compaction(defaults)
            && compaction.max_compaction_lag_ms > 0
        {
            log.segment_ms = log.segment_ms.min(compaction.max_compaction_lag_ms);
        }
        log
    }

    /// The cleanup policy: `delete` unless the topic sets another.
    pub fn cleanup_policy(&self) -> CleanupPolicy {
        self.overrides
            .get(keys::CLEANUP_POLICY)
            .and_then(|value| CleanupPolicy::parse(value))
            .unwrap_or(CleanupPolicy {
                delete: true,
                compact: false,
            })
    }

    /// The compaction settings when the policy includes `compact`.
    pub fn compaction(&self, defaults: &TopicDefaults) -> Option<CompactionConfig> {
        self.cleanup_policy().compact.then(|| self.compaction_settings(defaults))
    }

    fn compaction_settings(&self, defaults: &TopicDefaults) -> CompactionConfig {
        let mut compaction = defaults.compaction;
        if let Some(value) = self.get_i64(keys::DELETE_RETENTION_MS) {
            compaction.delete_retention_ms = value;
        }
        if let Some(value) = self.get_i64(keys::MIN_COMPACTION_LAG_MS) {
            compaction.min_compaction_lag_ms = value;
        }
        if let Some(value) = self.get_i64(keys::MAX_COMPACTION_LAG_MS) {
            compaction.max_compaction_lag_ms = value;
        }
        if let Some(value) = self
            .overrides
            .get(keys::MIN_CLEANABLE_DIRTY_RATIO)
            .and_then(|value| value.trim().parse().ok())
        {
            compaction.min_cleanable_dirty_ratio = value;
        }
        compaction
    }

    /// The log settings the keys name, before the cleanup policy is applied.
    fn configured_log(&self, defaults: &TopicDefaults) -> LogConfig {
        let mut log = defaults.log.clone();
        if let Some(value) = self.get_i64(keys::RETENTION_MS) {
            log.retention_ms = (value >= 0).then_some(value);
        }
        if let Some(value) = self.get_i64(keys::RETENTION_BYTES) {
            log.retention_bytes = u64::try_from(value).ok();
        }
        if let Some(value) = self.get_i64(keys::SEGMENT_BYTES) {
            log.segment_bytes = value.max(1) as u64;
        }
        if let Some(value) = self.get_i64(keys::SEGMENT_MS) {
            log.segment_ms = value;
        }
        if let Some(value) = self.get_i64(keys::INDEX_INTERVAL_BYTES) {
            log.index_interval_bytes = value.clamp(1, i64::from(u32::MAX)) as u32;
        }
        if let Some(durability) = self.overrides.get(keys::DURABILITY).and_then(|value| value.parse().ok()) {
            log.durability = durability;
        }
        log.log_append_time = self.timestamp_type() == TimestampType::LogAppendTime;
        log
    }

    pub fn max_message_bytes(&self, defaults: &TopicDefaults) -> u64 {
        self.get_i64(keys::MAX_MESSAGE_BYTES)
            .map(|value| value as u64)
            .unwrap_or(defaults.max_message_bytes)
    }

    /// The in-sync replicas an `acks=all` write to a replicated partition needs.
    pub fn min_insync_replicas(&self, defaults: &TopicDefaults) -> u16 {
        self.get_i64(keys::MIN_INSYNC_REPLICAS)
            .and_then(|value| u16::try_from(value).ok())
            .unwrap_or(defaults.min_insync_replicas)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        match self.overrides.get(keys::MESSAGE_TIMESTAMP_TYPE).map(String::as_str) {
            Some("LogAppendTime") => TimestampType::LogAppendTime,
            _ => TimestampType::CreateTime,
        }
    }

    /// Every supported key with its effective value.
    pub fn entries(&self, defaults: &TopicDefaults) -> Vec<ConfigEntry> {
        let log = self.configured_log(defaults);
        let compaction = self.compaction_settings(defaults);
        SUPPORTED_KEYS
            .iter()
            .map(|&name| {
                let value = match name {
                    keys::RETENTION_MS => log.retention_ms.unwrap_or(-1).to_string(),
                    keys::RETENTION_BYTES => log.retention_bytes.map(|bytes| bytes as i64).unwrap_or(-1).to_string(),
                    keys::SEGMENT_BYTES => log.segment_bytes.to_string(),
                    keys::SEGMENT_MS => log.segment_ms.to_string(),
                    keys::INDEX_INTERVAL_BYTES => log.index_interval_bytes.to_string(),
                    keys::DURABILITY => log.durability.to_string(),
                    keys::MAX_MESSAGE_BYTES => self.max_message_bytes(defaults).to_string(),
                    keys::MIN_INSYNC_REPLICAS => self.min_insync_replicas(defaults).to_string(),
                    keys::CLEANUP_POLICY => self.cleanup_policy().to_string(),
                    keys::DELETE_RETENTION_MS => compaction.delete_retention_ms.to_string(),
                    keys::MIN_COMPACTION_LAG_MS => compaction.min_compaction_lag_ms.to_string(),
                    keys::MAX_COMPACTION_LAG_MS => compaction.max_compaction_lag_ms.to_string(),
                    keys::MIN_CLEANABLE_DIRTY_RATIO => compaction.min_cleanable_dirty_ratio.to_string(),
                    keys::MESSAGE_TIMESTAMP_TYPE => match self.timestamp_type() {
                        TimestampType::CreateTime => "CreateTime".to_owned(),
                        TimestampType::LogAppendTime => "LogAppendTime".to_owned(),
                    },
                    _ => String::new(),
                };
                ConfigEntry {
                    name,
                    value,
                    is_default: !self.overrides.contains_key(name),
                }
            })
            .collect()
    }

    fn get_i64(&self, key: &str) -> Option<i64> {
        self.overrides.get(key).and_then(|value| value.trim().parse().ok())
    }
}

fn validate(key: &str, value: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let integer = || value.trim().parse::<i64>().map_err(|_| invalid("not an integer"));
    match key {
        keys::RETENTION_MS | keys::RETENTION_BYTES => {
            if integer()? < -1 {
                return Err(invalid("must be -1 (unlimited) or at least 0"));
            }
        }
        keys::SEGMENT_BYTES => {
            // Kafka's floor (a v0 record's overhead); the log caps segments at 2 GiB.
            let bytes = integer()?;
            if !(14..=i64::from(i32::MAX)).contains(&bytes) {
                return Err(invalid("must be between 14 and 2147483647"));
            }
        }
        keys::SEGMENT_MS => {
            if integer()? < 1 {
                return Err(invalid("must be at least 1"));
            }
        }
        keys::INDEX_INTERVAL_BYTES | keys::MAX_MESSAGE_BYTES => {
            if !(0..=i64::from(i32::MAX)).contains(&integer()?) {
                return Err(invalid("must be between 0 and 2147483647"));
            }
        }
        keys::CLEANUP_POLICY => {
            if CleanupPolicy::parse(value).is_none() {
                return Err(invalid("must be delete, compact or compact,delete"));
            }
        }
        keys::DELETE_RETENTION_MS | keys::MIN_COMPACTION_LAG_MS => {
            if integer()? < 0 {
                return Err(invalid("must be at least 0"));
            }
        }
        keys::MAX_COMPACTION_LAG_MS => {
            if integer()? < 1 {
                return Err(invalid("must be at least 1"));
            }
        }
        keys::MIN_CLEANABLE_DIRTY_RATIO => {
            let ratio: f64 = value.trim().parse().map_err(|_| invalid("not a number"))?;
            if !(0.0..=1.0).contains(&ratio) {
                return Err(invalid("must be between 0 and 1"));
            }
        }
        keys::MESSAGE_TIMESTAMP_TYPE => {
            if value != "CreateTime" && value != "LogAppendTime" {
                return Err(invalid("must be CreateTime or LogAppendTime"));
            }
        }
        keys::DURABILITY => {
            value.parse::<Durability>().map_err(|error| invalid(&error.to_string()))?;
        }
        keys::MIN_INSYNC_REPLICAS => {
            if !(1..=i64::from(u16::MAX)).contains(&integer()?) {
                return Err(invalid("must be at least 1"));
            }
        }
        _ => return Err(ConfigError::UnknownKey(key.to_owned())),
    }
    Ok(())
}

/// Parses a `durability` value for callers outside the catalog (the binary's flags).
pub fn parse_durability(value: &str) -> Result<Durability, ConfigError> {
    value
        .parse()
        .map_err(|error: conveyor_log::DurabilityParseError| ConfigError::InvalidValue {
            key: keys::DURABILITY.to_owned(),
            value: value.to_owned(),
            reason: error.to_string(),
        })
}

/// Interval durability of `ms` milliseconds.
pub fn interval(ms: u64) -> Durability {
    Durability::Interval(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<TopicConfig, ConfigError> {
        TopicConfig::new(pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect())
    }

    #[test]
    fn kafka_configs_map_onto_the_log() {
        let topic = config(&[
            ("retention.ms", "60000"),
            ("retention.bytes", "1048576"),
            ("segment.bytes", "65536"),
            ("durability", "interval:50"),
        ])
        .expect("valid");
        let log = topic.log_config(&TopicDefaults::default());
        assert_eq!(log.retention_ms, Some(60_000));
        assert_eq!(log.retention_bytes, Some(1_048_576));
        assert_eq!(log.segment_bytes, 65_536);
        assert_eq!(log.durability, interval(50));
    }

    #[test]
    fn minus_one_means_unlimited_retention() {
        let log = config(&[("retention.ms", "-1")])
            .expect("valid")
            .log_config(&TopicDefaults::default());
        assert_eq!(log.retention_ms, None);
    }

    #[test]
    fn bad_keys_and_values_are_refused() {
        assert_eq!(config(&[("no.such.key", "1")]), Err(ConfigError::UnknownKey("no.such.key".into())));
        for (key, value) in [
            ("retention.ms", "soon"),
            ("retention.ms", "-2"),
            ("segment.bytes", "1"),
            ("cleanup.policy", "compact,forever"),
            ("cleanup.policy", ""),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.cleanable.dirty.ratio", "dirty"),
            ("delete.retention.ms", "-1"),
            ("max.compaction.lag.ms", "0"),
            ("durability", "maybe"),
            ("message.timestamp.type", "Whenever"),
        ] {
            assert!(
                matches!(config(&[(key, value)]), Err(ConfigError::InvalidValue { .. })),
                "{key}={value}"
            );
        }
    }

    #[test]
    fn cleanup_policy_takes_each_of_kafkas_lists() {
        for (value, delete, compact) in [
            ("delete", true, false),
            ("compact", false, true),
            ("compact,delete", true, true),
            ("delete,compact", true, true),
            ("delete, compact", true, true),
        ] {
            let topic = config(&[("cleanup.policy", value)]).expect(value);
            assert_eq!(topic.cleanup_policy(), CleanupPolicy { delete, compact }, "{value}");
            assert_eq!(topic.compaction(&TopicDefaults::default()).is_some(), compact, "{value}");
        }
    }

    #[test]
    fn compact_alone_turns_time_and_size_retention_off() {
        let pairs = [("cleanup.policy", "compact"), ("retention.ms", "1000"), ("retention.bytes", "10")];
        let topic = config(&pairs).expect("valid");
        let log = topic.log_config(&TopicDefaults::default());
        assert_eq!((log.retention_ms, log.retention_bytes), (None, None));
        let both = config(&[("cleanup.policy", "compact,delete"), ("retention.ms", "1000")]).expect("valid");
        assert_eq!(both.log_config(&TopicDefaults::default()).retention_ms, Some(1000));
        // DescribeConfigs still shows what was set.
        let entries = topic.entries(&TopicDefaults::default());
        let retention = entries.iter().find(|entry| entry.name == "retention.ms").expect("listed");
        assert_eq!(retention.value, "1000");
    }

    #[test]
    fn max_compaction_lag_caps_segment_ms_on_compacted_topics_only() {
        let defaults = TopicDefaults::default();
        let compacted = config(&[("cleanup.policy", "compact"), ("max.compaction.lag.ms", "5000")]).expect("valid");
        assert_eq!(compacted.log_config(&defaults).segment_ms, 5_000);
        let shorter_segments = config(&[
            ("cleanup.policy", "compact,delete"),
            ("max.compaction.lag.ms", "5000"),
            ("segment.ms", "1000"),
        ])
        .expect("valid");
        assert_eq!(shorter_segments.log_config(&defaults).segment_ms, 1_000);
        let deleted = config(&[("max.compaction.lag.ms", "5000")]).expect("valid");
        assert_eq!(deleted.log_config(&defaults).segment_ms, defaults.log.segment_ms);
        let entries = compacted.entries(&defaults);
        let segment_ms = entries.iter().find(|entry| entry.name == "segment.ms").expect("listed");
        assert_eq!(
            segment_ms.value,
            defaults.log.segment_ms.to_string(),
            "DescribeConfigs shows segment.ms as set"
        );
    }

    #[test]
    fn compaction_keys_default_to_kafkas_values() {
        let entries = config(&[]).expect("valid").entries(&TopicDefaults::default());
        let value = |name: &str| entries.iter().find(|entry| entry.name == name).expect(name).value.clone();
        assert_eq!(value("cleanup.policy"), "delete");
        assert_eq!(value("delete.retention.ms"), "86400000");
        assert_eq!(value("min.compaction.lag.ms"), "0");
        assert_eq!(value("max.compaction.lag.ms"), "9223372036854775807");
        assert_eq!(value("min.cleanable.dirty.ratio"), "0.5");
        assert_eq!(value("segment.ms"), "604800000");
        let set = config(&[
            ("cleanup.policy", "compact"),
            ("delete.retention.ms", "100"),
            ("min.compaction.lag.ms", "5"),
            ("max.compaction.lag.ms", "60000"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ])
        .expect("valid");
        let compaction = set.compaction(&TopicDefaults::default()).expect("compacted");
        assert_eq!(
            (
                compaction.delete_retention_ms,
                compaction.min_compaction_lag_ms,
                compaction.max_compaction_lag_ms
            ),
            (100, 5, 60_000)
        );
        assert!((compaction.min_cleanable_dirty_ratio - 0.01).abs() < 1e-12);
    }

    #[test]
    fn entries_show_defaults_and_overrides() {
        let topic = config(&[("retention.ms", "1000")]).expect("valid");
        let entries = topic.entries(&TopicDefaults::default());
        let retention = entries.iter().find(|entry| entry.name == "retention.ms").expect("listed");
        assert_eq!((retention.value.as_str(), retention.is_default), ("1000", false));
        let durability = entries.iter().find(|entry| entry.name == "durability").expect("listed");
        assert_eq!((durability.value.as_str(), durability.is_default), ("always", true));
        assert_eq!(entries.len(), SUPPORTED_KEYS.len());
    }

    #[test]
    fn min_insync_replicas_defaults_to_the_brokers_and_is_at_least_one() {
        let defaults = TopicDefaults {
            min_insync_replicas: 2,
            ..TopicDefaults::default()
        };
        assert_eq!(TopicDefaults::default().min_insync_replicas, 1, "Kafka's default");
        assert_eq!(config(&[]).expect("valid").min_insync_replicas(&defaults), 2);
        let topic = config(&[("min.insync.replicas", "3")]).expect("valid");
        assert_eq!(topic.min_insync_replicas(&defaults), 3);
        let listed = topic.entries(&defaults);
        let entry = listed.iter().find(|entry| entry.name == "min.insync.replicas").expect("listed");
        assert_eq!((entry.value.as_str(), entry.is_default), ("3", false));
        assert!(matches!(
            config(&[("min.insync.replicas", "0")]),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(config(&[("min.insync.replicas", "two")]).is_err());
    }

    #[test]
    fn changes_set_and_reset_keys() {
        let topic = config(&[("retention.ms", "1000")]).expect("valid");
        let changes = BTreeMap::from([
            ("retention.ms".to_owned(), None),
            ("segment.ms".to_owned(), Some("5000".to_owned())),
        ]);
        let changed = topic.with_changes(&changes).expect("valid");
        assert_eq!(changed.overrides().len(), 1);
        assert_eq!(changed.overrides().get("segment.ms").map(String::as_str), Some("5000"));
    }
}
